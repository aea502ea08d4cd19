# CommuniTV application image (web, worker and ingest share it; the command picks the role).
# Not built on the development machines (no Docker engine there): kept correct by reading.
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    COMMUNITV_DATA_DIR=/var/lib/communitv
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv ffmpeg libvlc5 vlc-plugin-base espeak-ng fonts-noto-cjk ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal_server ./portal_server
COPY stb_app ./stb_app
COPY streaming ./streaming
COPY epg ./epg
COPY device_fleet ./device_fleet
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir . \
    && useradd --system --home /var/lib/communitv communitv \
    && mkdir -p /var/lib/communitv && chown communitv /var/lib/communitv
ENV PATH=/opt/venv/bin:$PATH
USER communitv
EXPOSE 8001
CMD ["gunicorn", "--workers", "4", "--threads", "4", "--bind", "0.0.0.0:8001", "portal_server.app:create_app()"]
