import { fileURLToPath } from 'node:url'
import { describeExampleContract } from '@tollgate/example-shared/contract'

const dir = fileURLToPath(new URL('..', import.meta.url))
describeExampleContract('fastify', dir, { store: 'memory' })
describeExampleContract('fastify', dir, { store: 'redis' })
