import { fileURLToPath } from 'node:url'
import { describeOpsPage } from '@tollgate/example-shared/ops-page'

describeOpsPage('express', fileURLToPath(new URL('..', import.meta.url)))
