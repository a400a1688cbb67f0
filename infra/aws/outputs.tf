output "workspace_arn" {
  description = "AmpWorkspaceArn parameter of template.yaml."
  value       = local.workspace_arn
}

output "remote_write_url" {
  description = "UpstreamURL parameter of template.yaml (PROMRELAY_UPSTREAM_URL)."
  value       = "${local.endpoint}api/v1/remote_write"
}

output "role_arn" {
  description = "An execution role that may only write to the workspace (and the state bucket)."
  value       = aws_iam_role.relay.arn
}

output "state_url" {
  description = "PROMRELAY_STATE_URL for the group store, when the bucket is created."
  value       = var.create_state_bucket ? "s3://${aws_s3_bucket.state[0].bucket}/groups" : ""
}

output "sam_deploy_command" {
  description = "The sam deploy command with this infrastructure's values."
  value       = "sam deploy --guided --parameter-overrides UpstreamURL=${local.endpoint}api/v1/remote_write AmpWorkspaceArn=${local.workspace_arn}${var.enable_read ? " QueryUrl=${trimsuffix(local.endpoint, "/")}" : ""}"
}

output "query_url" {
  description = "QueryUrl parameter of template.yaml (PROMRELAY_QUERY_URL of the read function), when enable_read; null otherwise."
  value       = var.enable_read ? trimsuffix(local.endpoint, "/") : null
}

output "read_role_arn" {
  description = "An execution role for the read function that may only query the workspace, when enable_read; null otherwise."
  value       = var.enable_read ? aws_iam_role.read[0].arn : null
}
