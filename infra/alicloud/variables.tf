variable "region" {
  description = "Alibaba Cloud region of the ARMS Prometheus instance and the function."
  type        = string
  default     = "cn-hangzhou"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "promrelay"
}

variable "arms_instance_id" {
  description = "ID of the Managed Service for Prometheus instance (cluster id) the function writes to. Required: the role is scoped to this one instance."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.arms_instance_id))
    error_message = "arms_instance_id must be one instance's cluster id (no wildcard)."
  }
}

variable "state_noncurrent_days" {
  description = "Days the group store bucket keeps an overwritten or deleted group's old versions (every push writes one)."
  type        = number
  default     = 7
}

variable "arms_actions" {
  description = "ARMS actions granted to the function's role. ARMS documents no action narrower than its API actions for remote write; the policy is scoped to the instance resource."
  type        = list(string)
  default     = ["arms:*"]
}

variable "create_state_bucket" {
  description = "Create an OSS bucket for promrelay's group store (PROMRELAY_STATE_URL=oss://<bucket>/groups)."
  type        = bool
  default     = false
}
