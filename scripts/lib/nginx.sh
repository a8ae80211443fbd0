# Sourced by scripts: start_nginx DIR starts nginx on a free 127.0.0.1 port as
# a WebDAV PUT target rooted at DIR/www (files under /files/), logging each
# request with its Content-Type header to DIR/access.log. Sets NGINX_PORT and
# NGINX_PID; stop_nginx stops it.
start_nginx() {
  local dir=$1
  NGINX_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/www/files" "$dir/tmp"
  local user_line=""
  if [ "$(id -u)" -eq 0 ]; then user_line="user root;"; fi
  cat > "$dir/nginx.conf" <<CONF
$user_line
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  log_format upload '\$request_method \$request_uri \$status content_type="\$http_content_type"';
  access_log $dir/access.log upload;
  client_body_temp_path $dir/tmp;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $dir/www;
    location /files/ { dav_methods PUT; create_full_put_path on; client_max_body_size 0; }
  }
}
CONF
  /usr/sbin/nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
  NGINX_PID=$!
  local _
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nginx did not start; see $dir/error.log" >&2
  return 1
}

stop_nginx() {
  if [ -n "${NGINX_PID:-}" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
  fi
}
