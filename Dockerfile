# CPU image of the LesionGAN dashboard on the shipped checkpoints.
#   docker build -t lesiongan .
#   docker run --rm -p 8501:8501 lesiongan      # then open http://localhost:8501
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt .
# CPU wheels of torch/torchvision first (the default PyPI wheels carry CUDA: ~5 GB), then the rest.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install -r requirements.txt

COPY . .
# The repository itself (gan, eval, dashboard, the lesiongan-* commands); its dependencies are met above.
RUN pip install --no-deps -e .
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
CMD ["python", "-m", "streamlit", "run", "dashboard/app.py", "--server.port=8501", "--server.address=0.0.0.0", \
     "--server.headless=true", "--browser.gatherUsageStats=false"]
