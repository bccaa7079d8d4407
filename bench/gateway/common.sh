# Shared by bench/gateway.sh and bench/gateway/ab.sh (sourced; they set $work first).

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# what an OpenAI-compatible server streams for a one-word answer (the gateway asks upstreams for streams)
chunk='{"id":"c1","object":"chat.completion.chunk","created":0,"model":"bench-upstream","choices":[{"index":0,'
answer="data: $chunk\"delta\":{\"role\":\"assistant\",\"content\":\"pong\"},\"finish_reason\":null}]}\\n\\ndata: $chunk\"delta\":{},\"finish_reason\":\"stop\"}]}\\n\\ndata: [DONE]\\n\\n"
nginx_conf() { # NAME PORT WORKERS LOCATION-BODY HTTP-EXTRA: writes $work/NAME/nginx.conf
  mkdir -p "$work/$1"
  cat >"$work/$1/nginx.conf" <<NGINX
worker_processes $3;
worker_rlimit_nofile 65536;
daemon off;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/$1;
  proxy_temp_path $work/$1;
  fastcgi_temp_path $work/$1;
  uwsgi_temp_path $work/$1;
  scgi_temp_path $work/$1;
  keepalive_requests 1000000;
  $5
  server {
    listen 127.0.0.1:$2 reuseport;
    location / { $4 }
  }
}
NGINX
}
