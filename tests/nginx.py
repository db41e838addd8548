"""deploy/nginx.conf run for real, by the deployment test and the rush benchmark."""
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
# Debian's libnginx-mod-http-brotli-filter, which deploy/nginx.conf needs (make browser installs it)
BROTLI = Path("/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so")


def nginx_config(tmp_path: Path, https: int, http: int, upstreams: list[int]) -> Path:
    """The repository's file with only what a town adapts changed: addresses, certificate, code path."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server 127.0.0.1:8000;" in site and "alias /srv/ribambelle/static/;" in site
    site = site.replace("server 127.0.0.1:8000;", " ".join(f"server 127.0.0.1:{p};" for p in upstreams))
    site = site.replace("listen 443 ssl", f"listen 127.0.0.1:{https} ssl").replace("listen 80", f"listen 127.0.0.1:{http}")
    site = site.replace("/etc/letsencrypt/live/famille.ville.fr/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/famille.ville.fr/privkey.pem", str(tmp_path / "key.pem"))
    site = site.replace("alias /srv/ribambelle/static/;", f"alias {ROOT / 'static'}/;")
    assert "/var/log/nginx/ribambelle.access.log" in site
    site = site.replace("/var/log/nginx/ribambelle.access.log", str(tmp_path / "nginx-access.log"))
    (tmp_path / "ribambelle.conf").write_text(site)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=famille.ville.fr",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / name).mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(f"""
{"user root;" if os.getuid() == 0 else ""}
load_module {BROTLI};  # Debian's nginx.conf loads it from /etc/nginx/modules-enabled
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy; fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/ribambelle.conf;
}}
""")
    return main
