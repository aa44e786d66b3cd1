// Needs limiter.refund from core (issue 14's refund operation).
import { describeAdapterRefunds } from '@tollgate/testkit'
import { expressApp } from './app.js'

describeAdapterRefunds('express', expressApp)
