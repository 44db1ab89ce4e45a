# evaluate_survival and kaplan_meier of alsprog against R (issue 25).
# Run from tests/reference:  Rscript survival_evaluate_reference.R > survival_evaluate_reference.Rout 2>&1
# 1. survfit(Surv(entry, time, event) ~ 1) on lung.csv (delayed entry): the
#    Kaplan-Meier table with summary()'s std.err and the log-scale 95% interval.
# 2. The landmark protocol on the predictions of survival_scores_predictions.csv (a
#    Cox model's risks at 180, 365 and 540 days): at the landmark 180 days, the
#    patients still at risk, their survival at 365 and 540 given survival to 180,
#    scored on the window after the landmark (times shifted by 180) by
#    riskRegression::Score (AUC, Brier with Kaplan-Meier IPCW, the null model),
#    survival::concordance (Harrell's and Uno's C on the risk at each horizon, pairs
#    up to it: ymax) and the calibration slope: coxph of the outcome censored at the
#    horizon on log(-log S).
suppressPackageStartupMessages({library(survival); library(riskRegression); library(jsonlite)})
lung <- read.csv("lung.csv")
km <- survfit(Surv(entry, time, event) ~ 1, data = lung)
s <- summary(km)
pred <- read.csv("survival_scores_predictions.csv")
L <- 180; hz <- c(365, 540)
at <- pred$time > L
d <- data.frame(time = pred$time[at] - L, event = pred$event[at])
S180 <- 1 - pred$risk_180[at]
S <- cbind(1 - pred$risk_365[at], 1 - pred$risk_540[at]) / S180
risk <- 1 - S
sc <- Score(list(m = risk), formula = Hist(time, event) ~ 1, data = d, times = hz - L,
            metrics = c("auc", "brier"), cens.model = "km", null.model = TRUE,
            conf.int = FALSE)
auc <- as.data.frame(sc$AUC$score); brier <- as.data.frame(sc$Brier$score)
print(auc); print(brier)
one <- function(k) {
  h <- hz[k] - L
  dd <- data.frame(d, r = risk[, k], x = log(-log(S[, k])))
  harrell <- concordance(Surv(time, event) ~ r, data = dd, reverse = TRUE, ymax = h)
  uno <- concordance(Surv(time, event) ~ r, data = dd, reverse = TRUE, timewt = "n/G2", ymax = h)
  slope <- coef(coxph(Surv(pmin(time, h), event == 1 & time <= h) ~ x, data = dd, ties = "breslow"))
  c(harrell = unname(harrell$concordance), uno = unname(uno$concordance), slope = unname(slope))
}
cs <- sapply(1:2, one)
print(cs)
out <- list(
  km = list(time = s$time, n_risk = s$n.risk, n_event = s$n.event, surv = s$surv,
            se = s$std.err, lower = s$lower, upper = s$upper),
  landmark = L, horizons = hz, n = sum(at),
  auc = auc[auc$model == "m", "AUC"], brier = brier[brier$model == "m", "Brier"],
  brier_null = brier[brier$model == "Null model", "Brier"],
  harrell = unname(cs["harrell", ]), uno = unname(cs["uno", ]), slope = unname(cs["slope", ])
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "survival_evaluate_reference.json")
