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
  description = "ID of the Managed Service for Prometheus instance (cluster id) the function writes to; \"*\" for every instance in the region."
  type        = string
  default     = "*"
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
