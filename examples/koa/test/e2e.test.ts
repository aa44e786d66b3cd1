import { fileURLToPath } from 'node:url'
import { describeExampleContract } from '@tollgate/example-shared/contract'

const dir = fileURLToPath(new URL('..', import.meta.url))
describeExampleContract('koa', dir, { store: 'memory' })
describeExampleContract('koa', dir, { store: 'redis' })
