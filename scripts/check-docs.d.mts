export interface DocBlock {
  source: string
  line: number
  kind: 'run' | 'quickstart' | 'excerpt'
  name: string
  file: string
  code: string
}
export const root: string
export const blocksDir: string
export function extractBlocks(): DocBlock[]
export function writeBlocks(): DocBlock[]
