# Reference values for the log-rank and Cox tests of simulated trials
# (tests/design/test_survival_design.py: logrank_batch, cox_batch), run offline:
#   cd tests/reference && Rscript survival_logrank_cox_reference.R > survival_logrank_cox_reference.Rout 2>&1
# Small fixed data sets made here (times rounded to whole months, so many ties, with
# censoring); survival::survdiff (rho = 0) and survival::coxph(ties = "breslow").
suppressMessages({library(survival); library(jsonlite)})
options(digits = 15)
cat("R", R.version$major, R.version$minor, " survival", as.character(packageVersion("survival")), "\n")
set.seed(20261207)
make <- function(n, hr, round_to, cens_rate) {
  arm <- rep(c(FALSE, TRUE), length.out = n)
  t_ev <- rexp(n, rate = 0.05 * ifelse(arm, hr, 1))
  t_c <- rexp(n, rate = cens_rate)
  time <- pmin(t_ev, t_c, 24)
  event <- t_ev <= pmin(t_c, 24)
  if (round_to > 0) time <- pmax(round(time / round_to) * round_to, round_to)
  data.frame(time = time, event = event, arm = arm)
}
sets <- list(
  list(name = "n20_whole_months", d = make(20, 0.6, 1, 0.02)),
  list(name = "n40_whole_months", d = make(40, 0.7, 1, 0.03)),
  list(name = "n60_quarter_months_no_censoring", d = make(60, 0.5, 0.25, 1e-9)),
  list(name = "n100_3month_grid", d = make(100, 0.8, 3, 0.02)),
  list(name = "n200_continuous", d = make(200, 0.7, 0, 0.02)),
  list(name = "n30_harm", d = make(30, 1.8, 1, 0.01))
)
out <- list()
for (s in sets) {
  d <- s$d
  sd <- survdiff(Surv(time, event) ~ arm, data = d)
  fit <- coxph(Surv(time, event) ~ arm, data = d, ties = "breslow",
               control = coxph.control(eps = 1e-10, iter.max = 100))
  oe <- sd$obs[2] - sd$exp[2]
  res <- list(name = s$name, time = d$time, event = d$event, arm = d$arm,
              chisq = sd$chisq, obs_minus_exp_treated = oe, var_treated = sd$var[2, 2],
              z = oe / sqrt(sd$var[2, 2]),
              coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))))
  cat("\n==", s$name, "\n"); print(sd); print(summary(fit)$coefficients)
  out[[length(out) + 1]] <- res
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE),
           "survival_logrank_cox_reference.json")
