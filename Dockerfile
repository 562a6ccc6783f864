# CPU image of the LesionGAN dashboard on the shipped checkpoints.
#   docker build -t lesiongan .
#   docker run --rm -p 8501:8501 lesiongan      # then open http://localhost:8501
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
# CPU wheels of torch/torchvision first (the default PyPI wheels carry CUDA: ~5 GB), then the rest
# without the test tools (everything below requirements.txt's "# tests" line).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && sed '/^# tests/,$d' /tmp/requirements.txt > /tmp/runtime.txt \
 && pip install -r /tmp/runtime.txt && rm /tmp/requirements.txt /tmp/runtime.txt

# The package as a wheel, not editable (gan, eval, dashboard, the lesiongan-* commands); the sources
# are not kept. Its dependencies are met above.
COPY pyproject.toml README.md LICENSE /tmp/src/
COPY .streamlit /tmp/src/.streamlit
COPY gan /tmp/src/gan
COPY eval /tmp/src/eval
COPY dashboard /tmp/src/dashboard
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

# The weights are not in the wheel: gan.assets finds them through LESIONGAN_HOME. Owned by root,
# read-only for the user the server runs as.
COPY checkpoints /opt/lesiongan/checkpoints
ENV LESIONGAN_HOME=/opt/lesiongan
RUN useradd --create-home --home-dir /srv/lesiongan --uid 10001 lesiongan
USER lesiongan
WORKDIR /srv/lesiongan

# Visitors read only below the folders the server shares (dashboard/roots.py): the shipped checkpoints and
# runs/ in the user's home; any other path in an address or a field gets one line, and no traceback reaches
# the browser. To share runs or a data set, mount them and name them:
#   docker run --rm -p 8501:8501 -v /srv/runs:/runs lesiongan \
#     lesiongan-dashboard --server.address=0.0.0.0 --server.headless=true --runs /runs
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
CMD ["lesiongan-dashboard", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
