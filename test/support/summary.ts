/**
 * One compact line of measured figures per test, printed to stdout so CI logs carry them
 * (the closing note quotes them).
 */
export function summary(test: string, figures: Record<string, unknown>): void {
  const parts = Object.entries(figures).map(([name, value]) => {
    const shown = typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(1) : String(value)
    return `${name}=${shown}`
  })
  process.stdout.write(`[figures] ${test}: ${parts.join(' ')}\n`)
}
