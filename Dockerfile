# pycrl serve on CPU:
#   docker build -t pycrl .
#   docker run --rm -p 8000:8000 pycrl
#   curl --data-binary @clip.mp4 localhost:8000/v1/score
# Options follow the image name (docker run ... pycrl --faces all --queue 32); keys through
# the environment (-e PYCRL_API_KEYS=...).

# -- build: the wheel, with the C++ kernels (CPU build: no nvcc in this image) --------------
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py CMakeLists.txt README.md ./
COPY csrc csrc
COPY pycrl pycrl
RUN PYCRL_CUDA=OFF pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- run: the wheel with the [serve] extra, as an unprivileged user ---------------------------
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 pycrl
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/pycrl-*.whl)[serve]" && rm -rf /wheels
USER pycrl
# compiled OpenVINO graphs are cached here; nothing else is written outside the spool folder
ENV PYCRL_CACHE_DIR=/home/pycrl/.cache/pycrl
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
ENTRYPOINT ["pycrl", "serve", "--host", "0.0.0.0", "--port", "8000"]
