import { describeAdapterConformance } from '@tollgate/testkit'
import { fastifyApp } from './app.js'

describeAdapterConformance('fastify', fastifyApp)
