import { fileURLToPath } from 'node:url'
import { describeExampleContract } from '@tollgate/example-shared/contract'

const dir = fileURLToPath(new URL('..', import.meta.url))
describeExampleContract('express', dir, { store: 'memory' })
describeExampleContract('express', dir, { store: 'redis' })
