//! Confirming an evaluation on fresh episodes before it decides anything: every periodic
//! evaluation of a search replays the same starts, so after hundreds of them one passes by
//! luck. An evaluation that could pick `best` or stop the run is run again on
//! `search.confirm_episodes` new starts, and those decide.

use crate::config::SearchConfig;
use crate::eval::EvalSummary;

/// Whether `eval` meets `search.stop_at_success`.
fn succeeds(cfg: &SearchConfig, eval: &EvalSummary) -> bool {
    cfg.stop_at_success
        .is_some_and(|want| eval.success_rate.is_some_and(|r| r >= want))
}

/// Whether an evaluation is worth confirming: at least as good as the best so far (`best`, the
/// value the best was chosen by), or good enough to stop the run.
pub(super) fn contends(cfg: &SearchConfig, best: Option<f64>, eval: &EvalSummary) -> bool {
    best.is_none_or(|b| eval.mean_return >= b) || succeeds(cfg, eval)
}

/// What an evaluation (and its confirmation, where one ran) decides: the new best value where
/// the incumbent becomes `best` — its confirmation's mean return, or without confirmations
/// (`search.confirm_episodes = 0`) its evaluation's, beating the best so far — and whether the
/// run is solved: the evaluation and its confirmation both meet `search.stop_at_success`.
pub(super) fn decide(
    cfg: &SearchConfig,
    best: Option<f64>,
    eval: &EvalSummary,
    confirmation: Option<&EvalSummary>,
) -> (Option<f64>, bool) {
    let value = match (confirmation, cfg.confirm_episodes) {
        (Some(c), _) => Some(c.mean_return),
        (None, 0) => Some(eval.mean_return),
        (None, _) => None,
    };
    let new_best = value.filter(|&v| best.is_none_or(|b| v > b));
    let confirmed = match confirmation {
        Some(c) => succeeds(cfg, c),
        None => cfg.confirm_episodes == 0,
    };
    (new_best, succeeds(cfg, eval) && confirmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(mean_return: f64, success: f64) -> EvalSummary {
        EvalSummary {
            mean_return,
            success_rate: Some(success),
            episodes: 50,
            ..EvalSummary::default()
        }
    }

    #[test]
    fn a_lucky_evaluation_decides_nothing_until_fresh_episodes_confirm_it() {
        let cfg = SearchConfig {
            stop_at_success: Some(1.0),
            ..SearchConfig::default()
        };
        let lucky = summary(500.0, 1.0);
        // The first evaluation contends; its confirmation's return is what the best is by.
        assert!(contends(&cfg, None, &lucky));
        let confirmed = |c| decide(&cfg, Some(486.0), &lucky, Some(&c));
        assert_eq!(
            decide(&cfg, None, &lucky, Some(&summary(486.0, 0.93))),
            (Some(486.0), false)
        );
        // One as good as the best contends again: all fresh episodes succeeding solve the run;
        // a confirmation no better than the best keeps the best, and one under the bar does
        // not stop.
        assert!(contends(&cfg, Some(486.0), &lucky));
        assert_eq!(confirmed(summary(500.0, 1.0)), (Some(500.0), true));
        assert_eq!(confirmed(summary(486.0, 0.96)), (None, false));
        assert_eq!(confirmed(summary(480.0, 0.95)), (None, false));
        // One below the best and the bar is not confirmed and decides nothing.
        let weak = summary(400.0, 0.5);
        assert!(!contends(&cfg, Some(486.0), &weak));
        assert_eq!(decide(&cfg, Some(486.0), &weak, None), (None, false));
        // One that meets the bar is confirmed even below the best.
        assert!(contends(&cfg, Some(500.0), &summary(499.0, 1.0)));
        // Without a success rate, or without a bar, nothing stops the run: the return decides.
        let no_rate = EvalSummary {
            success_rate: None,
            ..summary(500.0, 1.0)
        };
        assert_eq!(
            decide(&cfg, Some(486.0), &no_rate, Some(&no_rate)),
            (Some(500.0), false)
        );
        let no_bar = SearchConfig::default();
        assert_eq!(
            decide(&no_bar, None, &lucky, Some(&lucky)),
            (Some(500.0), false)
        );
    }

    #[test]
    fn without_confirmations_the_evaluation_decides_alone() {
        let cfg = SearchConfig {
            stop_at_success: Some(0.9),
            confirm_episodes: 0,
            ..SearchConfig::default()
        };
        let decides = |best, e| decide(&cfg, Some(best), &e, None);
        assert_eq!(decides(450.0, summary(460.0, 0.9)), (Some(460.0), true));
        assert_eq!(decides(470.0, summary(460.0, 0.9)), (None, true));
        assert_eq!(decides(470.0, summary(470.0, 0.8)), (None, false));
    }
}
