# The resources around the promrelay function on Alibaba Cloud: the
# function's RAM role (Function Compute hands its STS credentials to every
# invocation, and promrelay signs its writes to ARMS with them), a policy
# that lets it write to the Managed Service for Prometheus instance, and
# optionally an OSS bucket for the group store.

data "alicloud_account" "current" {}

resource "alicloud_ram_role" "relay" {
  name        = "${var.name}-fc"
  description = "promrelay function: remote write to Managed Service for Prometheus"
  document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["fc.aliyuncs.com"] }
    }]
  })
  force = true
}

locals {
  arms_resource = "acs:arms:${var.region}:${data.alicloud_account.current.id}:prometheus/${var.arms_instance_id}"
  statements = concat([{
    Effect   = "Allow"
    Action   = var.arms_actions
    Resource = [local.arms_resource]
    }], var.create_state_bucket ? [{
    Effect   = "Allow"
    Action   = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:ListObjects"]
    Resource = ["acs:oss:*:*:${alicloud_oss_bucket.state[0].bucket}", "acs:oss:*:*:${alicloud_oss_bucket.state[0].bucket}/*"]
  }] : [])
}

resource "alicloud_ram_policy" "relay" {
  policy_name     = "${var.name}-remote-write"
  description     = "promrelay: write to Managed Service for Prometheus"
  policy_document = jsonencode({ Version = "1", Statement = local.statements })
  force           = true
}

resource "alicloud_ram_role_policy_attachment" "relay" {
  role_name   = alicloud_ram_role.relay.name
  policy_name = alicloud_ram_policy.relay.policy_name
  policy_type = "Custom"
}

resource "random_id" "bucket" {
  count       = var.create_state_bucket ? 1 : 0
  byte_length = 4
}

resource "alicloud_oss_bucket" "state" {
  count  = var.create_state_bucket ? 1 : 0
  bucket = "${var.name}-state-${random_id.bucket[0].hex}"

  # Versioning keeps every overwritten group: expire the old versions.
  lifecycle_rule {
    id      = "expire-noncurrent-versions"
    enabled = true
    noncurrent_version_expiration {
      days = var.state_noncurrent_days
    }
  }
}

resource "alicloud_oss_bucket_versioning" "state" {
  count  = var.create_state_bucket ? 1 : 0
  bucket = alicloud_oss_bucket.state[0].bucket
  status = "Enabled"
}
