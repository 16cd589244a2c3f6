// nginx configs: the upstream origin every contender talks to, and nginx as a contender.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'

/** Where Debian puts the echo module (libnginx-mod-http-echo). */
export const ECHO_MODULE = '/usr/lib/nginx/modules/ngx_http_echo_module.so'

/** The origin's stub_status location. */
export const STATUS_PATH = '/_status'

/** The bodies the origin serves. */
export const SMALL_BODY = 'hello, sb\n' // 10 bytes
export const JSON_BODY = makeJson(1024)
export const MIB = 1024 * 1024

/**
 * Writes the origin's files and config under `dir` and returns the nginx argv.
 * `worker_processes 1`; everything (pid, logs, temp paths) lives in `dir`.
 */
export const originConfig = ({ dir, port }) => {
  const www = join(dir, 'www')
  mkdirSync(www, { recursive: true })
  writeFileSync(join(www, 'json'), JSON_BODY)
  if (!existsSync(join(www, '1mib'))) writeFileSync(join(www, '1mib'), Buffer.alloc(MIB, 'a'))
  writeFileSync(join(www, 'cacheable'), JSON_BODY)
  const body = `
load_module ${ECHO_MODULE};
${common(dir, 'origin')}
http {
${httpCommon(dir, 'origin')}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${www};
    location = /small { default_type text/plain; return 200 "${SMALL_BODY.replace('\n', '\\n')}"; }
    location = /json { default_type application/json; }
    location = /1mib { default_type application/octet-stream; }
    location = /cacheable { default_type application/json; add_header Cache-Control "max-age=60" always; }
    # request counter: tells how many requests got past a proxy (the cache section shows it)
    location = ${STATUS_PATH} { stub_status; }
    location = /echo {
      client_max_body_size 1m;
      client_body_buffer_size 1m;   # keep the body in memory so $request_body is set
      echo_read_request_body;
      echo -n $request_body;
    }
  }
}
`
  return writeConf(dir, 'origin', body)
}

/**
 * nginx as a reverse proxy to `upstreamPort`: upstream block with keepalive 64,
 * HTTP/1.1 and an empty Connection header. With `cache`, /cacheable goes through proxy_cache.
 */
export const proxyConfig = ({ dir, name, port, upstreamPort, cache = false }) => {
  const cacheDir = join(dir, `${name}-cache`)
  if (cache) mkdirSync(cacheDir, { recursive: true })
  const body = `
${common(dir, name)}
http {
${httpCommon(dir, name)}
  upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 1000000; }
  ${cache ? `proxy_cache_path ${cacheDir} levels=1:2 keys_zone=bench:10m max_size=256m inactive=10m use_temp_path=off;` : ''}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    # The stock 8k/16k would spool every 16 KiB POST body to a temp file on disk.
    client_body_buffer_size 64k;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      ${cache ? 'proxy_cache bench; proxy_cache_lock on; add_header X-Cache-Status $upstream_cache_status;' : ''}
    }
  }
}
`
  return writeConf(dir, name, body)
}

const common = (dir, name) => `
worker_processes 1;
daemon off;
master_process on;
user root root;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 8192; multi_accept on; }`

const httpCommon = (dir, name) => `
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path ${join(dir, `${name}-tmp`, 'body')};
  proxy_temp_path ${join(dir, `${name}-tmp`, 'proxy')};
  fastcgi_temp_path ${join(dir, `${name}-tmp`, 'fastcgi')};
  uwsgi_temp_path ${join(dir, `${name}-tmp`, 'uwsgi')};
  scgi_temp_path ${join(dir, `${name}-tmp`, 'scgi')};`

const writeConf = (dir, name, body) => {
  mkdirSync(join(dir, `${name}-tmp`), { recursive: true })
  const file = join(dir, `${name}.conf`)
  writeFileSync(file, body)
  return ['-p', dir, '-e', join(dir, `${name}-error.log`), '-c', file]
}

function makeJson(size) {
  const items = []
  let text = ''
  for (let i = 0; ; i++) {
    items.push({ id: i, name: `item-${i}`, ok: i % 2 === 0 })
    const next = JSON.stringify({ items })
    if (next.length > size - 40) break
    text = next
  }
  const parsed = JSON.parse(text)
  parsed.pad = ''
  const base = JSON.stringify(parsed)
  parsed.pad = 'x'.repeat(size - base.length)
  return JSON.stringify(parsed)
}
