FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY . .
RUN pip install --no-cache-dir --no-deps -e . && useradd --system --no-create-home app
USER app

EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn \"${STRATEGY:-rls}.wsgi\" --bind 0.0.0.0:8000 --workers 2"]
