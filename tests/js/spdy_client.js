// An independent SPDY/3.1 client (npm spdy-transport) that opens the streams kubectl opens.
// Usage: node spdy_client.js '<json config>'; prints one JSON line with what it received.
'use strict'
const tls = require('tls')
const net = require('net')
const fs = require('fs')
const transport = require('spdy-transport')

const cfg = JSON.parse(process.argv[2])
const received = {}
let upgradeStatus = null
let responseHead = ''

function connect () {
  if (cfg.ca) {
    return tls.connect({ host: '127.0.0.1', port: cfg.port, ca: fs.readFileSync(cfg.ca), servername: '127.0.0.1' })
  }
  return net.connect({ host: '127.0.0.1', port: cfg.port })
}

function finish () {
  process.stdout.write(JSON.stringify({ status: upgradeStatus, head: responseHead, streams: received }) + '\n')
  process.exit(0)
}

const socket = connect()
socket.once(cfg.ca ? 'secureConnect' : 'connect', () => {
  const versions = cfg.versions.map((v) => `X-Stream-Protocol-Version: ${v}\r\n`).join('')
  socket.write(`POST ${cfg.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n${versions}Content-Length: 0\r\n\r\n`)
})
let buf = Buffer.alloc(0)
function onHead (chunk) {
  buf = Buffer.concat([buf, chunk])
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return
  socket.removeListener('data', onHead)
  responseHead = buf.slice(0, end).toString()
  upgradeStatus = parseInt(responseHead.split(' ')[1], 10)
  const rest = buf.slice(end + 4)
  if (upgradeStatus !== 101) {
    received.body = rest.toString()
    socket.on('data', (d) => { received.body += d.toString() })
    socket.on('close', finish)
    return
  }
  if (rest.length) socket.unshift(rest)
  startSpdy()
}
socket.on('data', onHead)
socket.on('error', (e) => { received.socketError = String(e) })

function startSpdy () {
  const conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false })
  conn.start(3.1)
  conn.on('error', (e) => { received.connError = String(e) })
  socket.on('close', () => setTimeout(finish, 100))
  let pendingEnds = cfg.streams.length
  for (const s of cfg.streams) {
    const headers = Object.assign({}, s.headers)
    const key = s.name
    received[key] = received[key] || ''
    // Like spdystream's CreateStream, write only once the server has replied to the stream.
    const stream = conn.request({ method: 'POST', path: '/', host: '127.0.0.1', headers }, (err) => {
      if (err) { received[key + ':error'] = String(err); return }
      if (s.write !== undefined) stream.write(s.write)
      if (s.end) stream.end()
    })
    stream.on('data', (d) => { received[key] += d.toString('latin1') })
    if (cfg.closeAfterEnds) {
      stream.on('end', () => { if (--pendingEnds === 0) setTimeout(() => socket.destroy(), 50) })
    }
    stream.on('error', () => {})
  }
}
setTimeout(() => { received.timeout = true; finish() }, cfg.timeoutMs || 20000)
