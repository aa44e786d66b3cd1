import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'

/**
 * A script call as it crosses the wire: its mode ('run' | 'cancel') and its first job's op ('d' | 'p' | 'r';
 * a decision sent in its one-argument form 'D' reads as 'd').
 */
export interface ScriptCall {
  readonly mode: string
  readonly op: string
}

/** RESP of a batch script call: ARGV 4 the mode, 5 the count, 6 the first job's op. */
const scriptCall = /\$(?:3\r\nrun|6\r\ncancel)\r\n\$\d+\r\n\d+\r\n\$1\r\n([dDpr])\r\n/

function parseCall(command: string): ScriptCall | undefined {
  if (!/fcall|evalsha|eval/i.test(command)) return undefined
  const found = scriptCall.exec(command)
  if (!found) return undefined
  return { mode: /\$6\r\ncancel/.test(command) ? 'cancel' : 'run', op: found[1]!.toLowerCase() }
}

/**
 * A TCP proxy on loopback in front of one Redis: bytes pass both ways, except that once armed it forwards
 * the next script call that `matches` to Redis, swallows the reply bytes that follow it (so Redis has run
 * it) and then destroys that client's socket — the client never learns the answer.
 */
export interface ReplyDropper {
  readonly port: number
  /** Resolves once a matching call was run by Redis and its reply thrown away. */
  dropNextReply(matches: (call: ScriptCall) => boolean): Promise<void>
  /**
   * Cluster: rewrites the address in MOVED / ASK replies ('host:port' → 'host:port'), as a NAT would, so a
   * redirected client reaches the node through its proxy (ioredis applies `natMap` to CLUSTER SLOTS only
   * reliably: on a MOVED it stores the raw address and, finding no connection by it, retries at random).
   */
  translate(addresses: ReadonlyMap<string, string>): void
  close(): Promise<void>
}

export async function replyDropper(upstreamPort: number): Promise<ReplyDropper> {
  const sockets = new Set<Socket>()
  let addresses: ReadonlyMap<string, string> = new Map()
  const translated = (chunk: Buffer): Buffer => {
    const text = chunk.toString('latin1')
    if (addresses.size === 0 || !/-(MOVED|ASK) /.test(text)) return chunk
    const out = text.replace(/(-(?:MOVED|ASK) \d+ )(\S+)\r\n/g, (line, head: string, address: string) => {
      const mapped = addresses.get(address)
      return mapped ? `${head}${mapped}\r\n` : line
    })
    return Buffer.from(out, 'latin1')
  }
  let armed: { matches: (call: ScriptCall) => boolean; dropped: () => void } | undefined
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(upstreamPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    // Set when this connection carried the armed call: the next bytes from Redis are its reply.
    let swallowing: (() => void) | undefined
    const drop = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (chunk) => {
      const call = armed && parseCall(chunk.toString('latin1'))
      if (armed && call && armed.matches(call)) {
        swallowing = armed.dropped
        armed = undefined
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (swallowing) {
        const dropped = swallowing
        swallowing = undefined
        drop()
        dropped()
        return
      }
      client.write(translated(chunk))
    })
    for (const socket of [client, upstream]) {
      socket.on('error', drop)
      socket.on('close', () => {
        sockets.delete(socket)
        drop()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  return {
    port: address.port,
    dropNextReply: (matches) =>
      new Promise<void>((resolve) => {
        armed = { matches, dropped: resolve }
      }),
    translate: (map) => {
      addresses = map
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
