# Scores of time-to-event predictions: riskRegression::Score (time-dependent AUC and
# Brier score with Kaplan-Meier inverse-probability-of-censoring weights) and
# survival::concordance (Harrell's C; Uno's C with timewt = "n/G2"), the references
# of alsprog's survival scores (issue 25).
# Run from tests/reference:  Rscript survival_scores_reference.R > survival_scores_reference.Rout 2>&1
# Predictions: a Cox model of lung.csv (age, sex, ph.ecog) fitted on the first 150
# patients, its risks 1 - S(t | x) at 180, 365 and 540 days for all 227 (written to
# survival_scores_predictions.csv, so the scores are checked on the same numbers).
suppressPackageStartupMessages({library(survival); library(riskRegression); library(jsonlite)})
cat("riskRegression", as.character(packageVersion("riskRegression")),
    "survival", as.character(packageVersion("survival")), "\n")
lung <- read.csv("lung.csv")
times <- c(180, 365, 540)
fit <- coxph(Surv(time, event) ~ age + sex + ph.ecog, data = lung[1:150, ], x = TRUE)
risk <- predictRisk(fit, newdata = lung, times = times)
pred <- data.frame(time = lung$time, event = lung$event, lp = predict(fit, newdata = lung),
                   risk_180 = risk[, 1], risk_365 = risk[, 2], risk_540 = risk[, 3])
write.csv(pred, "survival_scores_predictions.csv", row.names = FALSE)
sc <- Score(list(cox = risk), formula = Hist(time, event) ~ 1, data = lung,
            times = times, metrics = c("auc", "brier"), cens.model = "km",
            null.model = TRUE, conf.int = FALSE, summary = "ibs")
auc <- as.data.frame(sc$AUC$score)
brier <- as.data.frame(sc$Brier$score)
print(auc); print(brier)
harrell <- concordance(Surv(time, event) ~ lp, data = pred, reverse = TRUE)
uno <- concordance(Surv(time, event) ~ lp, data = pred, reverse = TRUE, timewt = "n/G2")
uno365 <- concordance(Surv(time, event) ~ lp, data = pred, reverse = TRUE,
                      timewt = "n/G2", ymax = 365)
cat("Harrell", harrell$concordance, "Uno", uno$concordance, "Uno to 365", uno365$concordance, "\n")
out <- list(
  times = times,
  auc = auc[auc$model == "cox", "AUC"],
  brier = brier[brier$model == "cox", "Brier"],
  brier_null = brier[brier$model == "Null model", "Brier"],
  ibs = brier[brier$model == "cox", "IBS"],
  harrell = unname(harrell$concordance),
  uno = unname(uno$concordance),
  uno_365 = unname(uno365$concordance)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "survival_scores_reference.json")
