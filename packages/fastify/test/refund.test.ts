// Needs limiter.refund from core (issue 14's refund operation).
import { describeAdapterRefunds } from '@tollgate/testkit'
import { fastifyApp } from './app.js'

describeAdapterRefunds('fastify', fastifyApp)
