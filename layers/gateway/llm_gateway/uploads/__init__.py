"""Audio uploads: presigned S3 PUTs for audio too large for API Gateway, read back by `file_id`."""
