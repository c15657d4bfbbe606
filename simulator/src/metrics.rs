//! How many events the workers themselves counted as expired (deadline passed before they could
//! answer), read from their `/metrics` pages before and after a load run. An accepted event that
//! never got a callback is a deadline miss either way; it is *lost* only if the pipeline did not
//! count it as expired, so the report subtracts this figure (the pages are Prometheus text; the
//! counter is `yourlogic_events_processed_total{outcome="expired"}`, summed over triggers).

use std::time::Duration;

use anyhow::{Context, Result};

/// The counter of processed events, by trigger and outcome.
const PROCESSED: &str = "yourlogic_events_processed_total";

/// Sums `yourlogic_events_processed_total{outcome="expired"}` over the pages at `urls`.
pub async fn expired_total(urls: &[String]) -> Result<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut total = 0.0;
    for url in urls {
        let page = client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("reading the worker metrics at {url}"))?
            .text()
            .await
            .with_context(|| format!("reading the worker metrics at {url}"))?;
        total += metric_value(&page, PROCESSED, &[("outcome", "expired")]);
    }
    Ok(total)
}

/// The sum of the samples of metric `name` on a Prometheus text page whose labels include all of
/// `labels` (0 when there is none).
pub fn metric_value(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn expired_events_are_summed_over_triggers() {
        let page = "# TYPE yourlogic_events_processed_total counter\n\
            yourlogic_events_processed_total{trigger=\"MESSAGE\",outcome=\"expired\"} 3\n\
            yourlogic_events_processed_total{trigger=\"FILE\",outcome=\"expired\"} 2\n\
            yourlogic_events_processed_total{trigger=\"MESSAGE\",outcome=\"answered\"} 40\n";
        let sum = super::metric_value(page, super::PROCESSED, &[("outcome", "expired")]);
        assert_eq!(sum, 5.0);
    }
}
