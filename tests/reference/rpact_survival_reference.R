# Reference values for tests/design/test_survival_design.py, run offline (R is never a
# test dependency):
#   cd tests/reference && Rscript rpact_survival_reference.R > rpact_survival_reference.Rout 2>&1
# rpact::getSampleSizeSurvival with uniform accrual over accrualTime = c(0, accrual),
# exponential survival (control median -> lambda2, or control event rate pi2 by
# eventTime), exponential dropout, Schoenfeld or Freedman events, allocation ratio,
# fixed designs and group-sequential designs (getDesignGroupSequential).
# `args` are alsprog's argument names.
suppressMessages({library(rpact); library(jsonlite)})
options(digits = 15)
cat("R", R.version$major, R.version$minor, " rpact", as.character(packageVersion("rpact")), "\n")

cases <- list(
  list(name = "hr07_median18", hr = 0.7, accrual = 12, follow = 12, median = 18),
  list(name = "hr08_median24_power09", hr = 0.8, accrual = 18, follow = 12, median = 24, power = 0.9),
  list(name = "hr06_alpha005_2sided", hr = 0.6, accrual = 12, follow = 6, median = 12, alpha = 0.05, sided = 2),
  list(name = "hr07_rate03", hr = 0.7, accrual = 12, follow = 12, rate = 0.3),
  list(name = "hr075_rate04_t18", hr = 0.75, accrual = 24, follow = 12, rate = 0.4, eventTime = 18),
  list(name = "hr07_alloc2", hr = 0.7, accrual = 12, follow = 12, median = 18, alloc = 2),
  list(name = "hr065_alloc05_freedman", hr = 0.65, accrual = 10, follow = 14, median = 20, alloc = 0.5, method = "freedman"),
  list(name = "hr07_freedman", hr = 0.7, accrual = 12, follow = 12, median = 18, method = "freedman"),
  list(name = "hr07_dropout", hr = 0.7, accrual = 12, follow = 12, median = 18, dropout = 0.1),
  list(name = "hr08_dropout_t6", hr = 0.8, accrual = 15, follow = 9, rate = 0.5, dropout = 0.05, dropoutTime = 6),
  list(name = "hr125_harm", hr = 1.25, accrual = 12, follow = 12, median = 30),
  list(name = "hr07_asOF3", hr = 0.7, accrual = 12, follow = 12, median = 18,
       design = list(k = 3, spending = "obrien-fleming", typeOfDesign = "asOF")),
  list(name = "hr075_asP2_dropout", hr = 0.75, accrual = 18, follow = 12, median = 15, dropout = 0.1,
       design = list(k = 2, spending = "pocock", typeOfDesign = "asP", alpha = 0.025, beta = 0.1)),
  list(name = "hr07_asOF_bsOF4_freedman_alloc", hr = 0.7, accrual = 12, follow = 18, median = 24, alloc = 1.5, method = "freedman",
       design = list(k = 4, spending = "obrien-fleming", typeOfDesign = "asOF", futility = "obrien-fleming", typeBetaSpending = "bsOF")),
  list(name = "hr08_hsd3_unequal_2sided", hr = 0.8, accrual = 24, follow = 12, rate = 0.35, dropout = 0.05,
       design = list(k = 3, spending = "hsd", typeOfDesign = "asHSD", gammaA = -2, alpha = 0.05, sided = 2,
                     informationRates = c(0.4, 0.75, 1)))
)

nz <- function(x, d) if (is.null(x)) d else x
out <- list()
for (cs in cases) {
  args <- list(hazardRatio = cs$hr, accrualTime = c(0, cs$accrual), followUpTime = cs$follow,
               allocationRatioPlanned = nz(cs$alloc, 1),
               typeOfComputation = if (identical(cs$method, "freedman")) "Freedman" else "Schoenfeld",
               dropoutRate1 = nz(cs$dropout, 0), dropoutRate2 = nz(cs$dropout, 0),
               dropoutTime = nz(cs$dropoutTime, 12))
  if (!is.null(cs$median)) args$lambda2 <- log(2) / cs$median
  if (!is.null(cs$rate)) { args$pi2 <- cs$rate; args$eventTime <- nz(cs$eventTime, 12) }
  ds <- cs$design
  if (is.null(ds)) {
    args$alpha <- nz(cs$alpha, 0.025); args$beta <- 1 - nz(cs$power, 0.8); args$sided <- nz(cs$sided, 1)
  } else {
    dargs <- list(kMax = ds$k, typeOfDesign = ds$typeOfDesign, alpha = nz(ds$alpha, 0.025),
                  beta = nz(ds$beta, 0.2), sided = nz(ds$sided, 1))
    if (!is.null(ds[["gammaA", exact = TRUE]])) dargs$gammaA <- ds[["gammaA", exact = TRUE]]
    if (!is.null(ds$informationRates)) dargs$informationRates <- ds$informationRates
    if (!is.null(ds$typeBetaSpending)) { dargs$typeBetaSpending <- ds$typeBetaSpending; dargs$bindingFutility <- FALSE }
    args$design <- do.call(getDesignGroupSequential, dargs)
  }
  s <- suppressWarnings(do.call(getSampleSizeSurvival, args))
  kmax <- if (is.null(ds)) 1 else ds$k
  res <- list(
    name = cs$name,
    args = list(hazard_ratio = cs$hr, accrual_months = cs$accrual, follow_up_months = cs$follow,
                control_median_months = cs$median, control_event_rate = cs$rate,
                event_time_months = cs$eventTime, alpha = cs$alpha, power = cs$power, sided = cs$sided,
                allocation_ratio = cs$alloc, dropout_rate = cs$dropout, dropout_time_months = cs$dropoutTime,
                method = cs$method),
    design = if (is.null(ds)) NULL else list(k = ds$k, spending = ds$spending, gamma = ds[["gammaA", exact = TRUE]],
                                             alpha = ds$alpha, beta = ds$beta, sided = ds$sided,
                                             information_rates = ds$informationRates, futility = ds$futility),
    eventsFixed = s$eventsFixed,
    maxNumberOfEvents = s$maxNumberOfEvents,
    maxNumberOfSubjects = s$maxNumberOfSubjects,
    maxNumberOfSubjects1 = s$maxNumberOfSubjects1,
    maxNumberOfSubjects2 = s$maxNumberOfSubjects2,
    cumulativeEventsPerStage = as.numeric(if (kmax == 1) s$maxNumberOfEvents else s$eventsPerStage),
    analysisTime = as.numeric(s$analysisTime),
    numberOfSubjects = as.numeric(s$numberOfSubjects),
    studyDuration = as.numeric(if (kmax == 1) s$analysisTime[1] else s$studyDuration),
    expectedEventsH1 = as.numeric(s$expectedEventsH1),
    expectedNumberOfSubjectsH1 = if (kmax == 1) s$maxNumberOfSubjects else as.numeric(s$expectedNumberOfSubjectsH1),
    lambda1 = as.numeric(s$lambda1), lambda2 = as.numeric(s$lambda2)
  )
  cat("\n==", cs$name, "\n")
  print(s)
  out[[length(out) + 1]] <- res
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
           "rpact_survival_reference.json")
