import { describeAdapterConformance } from '@tollgate/testkit'
import { koaApp } from './app.js'

describeAdapterConformance('koa', koaApp)
