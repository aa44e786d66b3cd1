import { fileURLToPath } from 'node:url'
import { describeOpsPage } from '@tollgate/example-shared/ops-page'

describeOpsPage('fastify', fileURLToPath(new URL('..', import.meta.url)))
