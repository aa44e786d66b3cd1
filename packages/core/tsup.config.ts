import { defineConfig } from 'tsup'
import shared from '../../tsup.shared'

export default defineConfig({
  ...shared,
  entry: {
    index: 'src/index.ts',
    store: 'src/entries/store.ts',
    http: 'src/entries/http.ts',
    node: 'src/entries/node.ts',
  },
})
