// nginx from the Debian package as the yardstick: one worker, upstream keep-alive, its own config and
// prefix in a temporary directory, started on a free port and stopped after the run.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../dev/free-port.ts'
import { type Started, start } from './processes.ts'

export async function startNginx(dir: string, upstreamPort: number): Promise<Started> {
  const port = await freePort()
  const prefix = join(dir, 'nginx')
  mkdirSync(prefix, { recursive: true })
  // Workers run as nobody; they only need to read the config and enter the prefix.
  chmodSync(dir, 0o755)
  chmodSync(prefix, 0o755)
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  )
  return start({
    name: 'nginx',
    command: 'nginx',
    args: ['-p', prefix, '-c', conf, '-e', `${prefix}/error.log`],
    env: {},
    port,
    readyPath: '/',
    logFile: join(prefix, 'stdout.log'),
  })
}
