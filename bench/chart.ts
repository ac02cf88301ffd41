// A hand-rolled SVG of the ratios the README quotes: throughput relative to the bare undici proxy, and
// latency at a fixed rate relative to the direct path. No library: two bar panels and some text.
import type { Results } from './report.ts'
import type { RateResult, Summary } from './sections.ts'
import { ratio } from './stats.ts'

const WIDTH = 760
const LABEL = 190
const BAR_AREA = 440
const ROW = 24

interface Bar {
  readonly label: string
  readonly value: number
  readonly text: string
  readonly gateway: boolean
}

function xmlText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

function panel(
  title: string,
  bars: readonly Bar[],
  top: number,
  max: number,
  marker?: { at: number; label: string },
): string {
  const scale = (value: number) => (Math.min(value, max) / max) * BAR_AREA
  const parts = [`<text x="10" y="${top + 16}" class="title">${xmlText(title)}</text>`]
  bars.forEach((bar, index) => {
    const y = top + 28 + index * ROW
    const width = Number.isFinite(bar.value) ? Math.max(1, scale(bar.value)) : 0
    parts.push(
      `<text x="${LABEL - 8}" y="${y + 15}" class="label" text-anchor="end">${xmlText(bar.label)}</text>`,
      `<rect x="${LABEL}" y="${y + 3}" width="${width.toFixed(1)}" height="${ROW - 8}" class="${bar.gateway ? 'gw' : 'ref'}"/>`,
      `<text x="${(LABEL + width + 6).toFixed(1)}" y="${y + 15}" class="value">${xmlText(bar.text)}</text>`,
    )
  })
  if (marker !== undefined) {
    const x = LABEL + scale(marker.at)
    const bottom = top + 28 + bars.length * ROW
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${top + 24}" x2="${x.toFixed(1)}" y2="${bottom}" class="marker"/>`,
      `<text x="${(x + 4).toFixed(1)}" y="${bottom + 12}" class="note">${xmlText(marker.label)}</text>`,
    )
  }
  return parts.join('\n')
}

export function chart(
  throughput: Map<string, Summary>,
  fixedRate: Map<string, RateResult>,
  results: Results,
): string {
  const bare = throughput.get('bare undici proxy')?.requestsPerSecond ?? Number.NaN
  const throughputBars: Bar[] = [...throughput].map(([name, summary]) => {
    const value = ratio(summary.requestsPerSecond, bare)
    return { label: name, value, text: `${value.toFixed(2)}x`, gateway: name.startsWith('gateway') }
  })
  const direct = fixedRate.get('direct')
  const latencyBars: Bar[] = []
  for (const [name, summary] of fixedRate) {
    if (name === 'direct') continue
    for (const [which, value, base] of [
      ['p50', summary.p50Ms, direct?.p50Ms ?? Number.NaN],
      ['p99', summary.p99Ms, direct?.p99Ms ?? Number.NaN],
    ] as const) {
      const r = ratio(value, base)
      latencyBars.push({
        label: `${name} ${which}`,
        value: r,
        text: `${r.toFixed(2)}x (+${(value - base).toFixed(2)} ms)`,
        gateway: name.startsWith('gateway'),
      })
    }
  }
  const throughputMax =
    Math.max(1.2, ...throughputBars.map((bar) => (Number.isFinite(bar.value) ? bar.value : 0))) * 1.15
  const latencyMax =
    Math.max(1.2, ...latencyBars.map((bar) => (Number.isFinite(bar.value) ? bar.value : 0))) * 1.35
  const firstHeight = 28 + throughputBars.length * ROW + 30
  const secondTop = firstHeight + 10
  const height = secondTop + 28 + latencyBars.length * ROW + 34
  const o = results.options
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>
.title { font-size: 14px; font-weight: 600; fill: #222; }
.label { font-size: 12px; fill: #333; }
.value { font-size: 12px; fill: #333; }
.note { font-size: 11px; fill: #666; }
.gw { fill: #1a73e8; }
.ref { fill: #9aa0a6; }
.marker { stroke: #d93025; stroke-width: 1.5; stroke-dasharray: 4 3; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
${panel(`Throughput relative to a bare undici proxy (wrk -c${o.connections}, higher is better)`, throughputBars, 0, throughputMax, { at: 0.8, label: 'target 0.8x' })}
${panel(`Latency at ${o.rate} req/s relative to direct (lower is better)`, latencyBars, secondTop, latencyMax)}
<text x="10" y="${height - 8}" class="note">${xmlText(`${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.machine.date.slice(0, 10)}; medians of ${o.rounds} interleaved rounds${results.iap ? '' : '; IAP verification OFF'}`)}</text>
</svg>
`
}
