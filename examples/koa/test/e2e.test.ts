import { fileURLToPath } from 'node:url'
import { describeExampleContract } from '@tollgate/example-shared/contract'

describeExampleContract('koa', fileURLToPath(new URL('..', import.meta.url)))
