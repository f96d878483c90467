#!/bin/sh
echo "checking health endpoint..."
echo "health check failed: expected HTTP 200, got 503" >&2
exit 3
