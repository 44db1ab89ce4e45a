# lmerTest's printout of summary() (Satterthwaite t-tests) at R's default options (digits = 7), the layout
# LinearMixedModel.summary() reproduces line by line (tests/models/test_summary_layout.py).
# Run offline (R is never a test dependency):
#   cd tests/reference && Rscript lmertest_summary_print.R > lmertest_summary_print.Rout 2>&1
suppressMessages(library(lmerTest))
cat("R", R.version$major, R.version$minor, " lme4", as.character(packageVersion("lme4")), " lmerTest", as.character(packageVersion("lmerTest")), "\n")
ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12, maxfun = 1e5))
show <- function(name, formula, data, REML = TRUE) {
  m <- eval(bquote(lmerTest::lmer(.(formula), data, REML = .(REML), control = ctrl)))
  cat("==== ", name, "\n", sep = "")
  print(summary(m))
  cat("==== end\n")
}
show("sleep_reml", Reaction ~ Days + (Days | Subject), sleepstudy)
show("sleep_ml", Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
show("sleep_uncorr", Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleepstudy)
show("sleep_int", Reaction ~ Days + (1 | Subject), sleepstudy)
# three correlated random effects: a 3 x 3 correlation block, 3 fixed effects
sleep3 <- transform(sleepstudy, Days2 = (Days - 4.5)^2 / 10)
show("sleep_quad", Reaction ~ Days + Days2 + (Days + Days2 | Subject), sleep3)
# the simulated ALS cohort of lme4_reference.R (NA rows: lmer's na.omit), onset site as
# 0/1 columns so that R's coefficient names are formulaic's; 7 fixed effects: the
# correlation matrix is wrapped at 80 characters; 21 rows with a missing value
als <- read.csv("als_sim.csv")
als <- transform(als, frs = alsfrs_r_total, onset_spinal = as.numeric(onset_site == "spinal"),
                 onset_other = as.numeric(onset_site == "other"))
show("als_reml", frs ~ months * (onset_spinal + onset_other) + age_at_onset +
       (months | subject_id), als)
# singular: every group has the same mean
show("noise_int", y ~ 1 + (1 | g), data.frame(
  y = c(1, -1, 0, 2, -2, 0, 0.5, -0.5, 0, 1.5, -1.5, 0),
  g = rep(c("a", "b", "c", "d"), each = 3)))
