// A strict reader of the Prometheus text format 0.0.4 for tests of GET /metrics: it parses
// samples (unescaping label values) and lists what breaks the format's rules: a family's HELP
// or TYPE twice or missing, a sample of no declared family or before its TYPE, a histogram
// whose buckets are not cumulative, do not end in le="+Inf", or disagree with _count.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshdeploy::test {

struct prom_sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct prom_text {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|...
  std::vector<prom_sample> samples;
  std::vector<std::string> problems;  // empty when the text follows the rules above

  // The value of the sample `name` whose labels include every (key, value) of `labels`,
  // summed over all such samples; nullopt when none matches.
  std::optional<double> sum(std::string_view name,
                            const std::map<std::string, std::string>& labels = {}) const;
};

prom_text parse_prometheus_text(std::string_view text);

}  // namespace meshdeploy::test
