variable "region" {
  description = "AWS region of the AMP workspace and the function."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "promrelay"
}

variable "create_workspace" {
  description = "Create an AMP workspace; false to use existing_workspace_id."
  type        = bool
  default     = true
}

variable "existing_workspace_id" {
  description = "ID of an existing AMP workspace (ws-...), when create_workspace is false."
  type        = string
  default     = ""
}

variable "create_state_bucket" {
  description = "Create an S3 bucket for promrelay's group store (PROMRELAY_STATE_URL=s3://<bucket>/groups)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "state_noncurrent_days" {
  description = "Days the group store bucket keeps an overwritten or deleted group's old versions (every push writes one)."
  type        = number
  default     = 7
}

variable "enable_read" {
  description = "Create the read function's role (the read path: Prometheus HTTP API through promrelay); false grants nothing beyond the write role."
  type        = bool
  default     = false
}
