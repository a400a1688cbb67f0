# The resources around the promrelay Lambda function on AWS: the Amazon
# Managed Service for Prometheus workspace it writes to, an IAM role that may
# only write there (for deployments that bring their own role instead of the
# one template.yaml creates), optionally an S3 bucket for the group store, and
# with enable_read a role for the read function that may only query.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_prometheus_workspace" "this" {
  count = var.create_workspace ? 1 : 0
  alias = var.name
  tags  = var.tags
}

locals {
  workspace_id  = var.create_workspace ? aws_prometheus_workspace.this[0].id : var.existing_workspace_id
  workspace_arn = "arn:${data.aws_partition.current.partition}:aps:${var.region}:${data.aws_caller_identity.current.account_id}:workspace/${local.workspace_id}"
  endpoint      = "https://aps-workspaces.${var.region}.amazonaws.com/workspaces/${local.workspace_id}/"
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "relay" {
  name               = "${var.name}-relay"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.relay.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

data "aws_iam_policy_document" "remote_write" {
  statement {
    sid       = "RemoteWrite"
    actions   = ["aps:RemoteWrite"]
    resources = [local.workspace_arn]
  }
  dynamic "statement" {
    for_each = var.create_state_bucket ? [1] : []
    content {
      sid       = "GroupStore"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
      resources = [aws_s3_bucket.state[0].arn, "${aws_s3_bucket.state[0].arn}/*"]
    }
  }
}

resource "aws_iam_role_policy" "remote_write" {
  name   = "${var.name}-remote-write"
  role   = aws_iam_role.relay.id
  policy = data.aws_iam_policy_document.remote_write.json
}

resource "aws_s3_bucket" "state" {
  count         = var.create_state_bucket ? 1 : 0
  bucket_prefix = "${var.name}-state-"
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "state" {
  count  = var.create_state_bucket ? 1 : 0
  bucket = aws_s3_bucket.state[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

# Versioning keeps every overwritten group: expire the old versions.
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  count  = var.create_state_bucket ? 1 : 0
  bucket = aws_s3_bucket.state[0].id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.state_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

resource "aws_s3_bucket_public_access_block" "state" {
  count                   = var.create_state_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.state[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# The read path (enable_read): a role of its own for the read function
# (functions/lambda-read), allowed only the four actions of the AMP query API
# (those of AWS's AmazonPrometheusQueryAccess managed policy) on this one
# workspace. AMP has no remote read, so nothing else is needed. Nothing here
# exists when enable_read is false.
resource "aws_iam_role" "read" {
  count              = var.enable_read ? 1 : 0
  name               = "${var.name}-read"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "read_logs" {
  count      = var.enable_read ? 1 : 0
  role       = aws_iam_role.read[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

data "aws_iam_policy_document" "query" {
  count = var.enable_read ? 1 : 0
  statement {
    sid       = "Query"
    actions   = ["aps:QueryMetrics", "aps:GetLabels", "aps:GetSeries", "aps:GetMetricMetadata"]
    resources = [local.workspace_arn]
  }
}

resource "aws_iam_role_policy" "query" {
  count  = var.enable_read ? 1 : 0
  name   = "${var.name}-query"
  role   = aws_iam_role.read[0].id
  policy = data.aws_iam_policy_document.query[0].json
}
