# supportlah production image: the same commands the tests run (`supportlah migrate|serve|worker`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SUPPORTLAH_DATA_DIR=/data SUPPORTLAH_HOST=0.0.0.0
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY supportlah supportlah
COPY channels channels
COPY agent agent
COPY rag rag
COPY memory memory
COPY escalation escalation
COPY workers workers
COPY migrations migrations
COPY config config
RUN pip install --no-cache-dir -c constraints.txt .
RUN useradd --create-home supportlah && mkdir -p /data && chown supportlah /data
USER supportlah
VOLUME ["/data"]
EXPOSE 8000
CMD ["supportlah", "serve"]
