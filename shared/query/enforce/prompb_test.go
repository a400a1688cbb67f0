package enforce
import _ "github.com/prometheus/prometheus/prompb"
