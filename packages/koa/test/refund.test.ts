// Needs limiter.refund from core (issue 14's refund operation).
import { describeAdapterRefunds } from '@tollgate/testkit'
import { koaApp } from './app.js'

describeAdapterRefunds('koa', koaApp)
