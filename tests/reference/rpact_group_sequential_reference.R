# Reference values for tests/design/test_group_sequential.py, run offline (R is never a
# test dependency):
#   cd tests/reference && Rscript rpact_group_sequential_reference.R > rpact_group_sequential_reference.Rout 2>&1
# rpact::getDesignGroupSequential (bounds, stage levels, alpha and beta spent) and
# rpact::getDesignCharacteristics (inflation factor, shift, power, ASN) for designs
# that vary the number of looks, spending function, gamma, information rates,
# sidedness and non-binding beta-spending futility.  `spending`/`futility` are
# alsprog's names; `typeOfDesign`/`typeBetaSpending` are rpact's.
suppressMessages({library(rpact); library(jsonlite)})
options(digits = 15)
cat("R", R.version$major, R.version$minor, " rpact", as.character(packageVersion("rpact")), "\n")

cases <- list(
  list(name = "asOF_k3", k = 3, alpha = 0.025, beta = 0.2, sided = 1, spending = "obrien-fleming", typeOfDesign = "asOF"),
  list(name = "asP_k4", k = 4, alpha = 0.025, beta = 0.1, sided = 1, spending = "pocock", typeOfDesign = "asP"),
  list(name = "asHSD_m4_k2", k = 2, alpha = 0.025, beta = 0.2, sided = 1, spending = "hsd", typeOfDesign = "asHSD", gammaA = -4),
  list(name = "asHSD_1_k5", k = 5, alpha = 0.05, beta = 0.2, sided = 1, spending = "hsd", typeOfDesign = "asHSD", gammaA = 1),
  list(name = "asKD_3_k3", k = 3, alpha = 0.025, beta = 0.2, sided = 1, spending = "kim-demets", typeOfDesign = "asKD", gammaA = 3),
  list(name = "OF_k3", k = 3, alpha = 0.025, beta = 0.2, sided = 1, spending = "classical-obrien-fleming", typeOfDesign = "OF"),
  list(name = "P_k5", k = 5, alpha = 0.025, beta = 0.2, sided = 1, spending = "classical-pocock", typeOfDesign = "P"),
  list(name = "asOF_unequal_k3", k = 3, alpha = 0.025, beta = 0.2, sided = 1, spending = "obrien-fleming", typeOfDesign = "asOF",
       informationRates = c(0.3, 0.65, 1)),
  list(name = "asOF_2sided_k4", k = 4, alpha = 0.05, beta = 0.2, sided = 2, spending = "obrien-fleming", typeOfDesign = "asOF"),
  list(name = "asP_2sided_unequal_k3", k = 3, alpha = 0.05, beta = 0.1, sided = 2, spending = "pocock", typeOfDesign = "asP",
       informationRates = c(0.25, 0.5, 1)),
  list(name = "OF_2sided_k2", k = 2, alpha = 0.05, beta = 0.2, sided = 2, spending = "classical-obrien-fleming", typeOfDesign = "OF"),
  list(name = "asOF_bsOF_k3", k = 3, alpha = 0.025, beta = 0.2, sided = 1, spending = "obrien-fleming", typeOfDesign = "asOF",
       futility = "obrien-fleming", typeBetaSpending = "bsOF"),
  list(name = "asHSD_bsHSD_k4", k = 4, alpha = 0.025, beta = 0.2, sided = 1, spending = "hsd", typeOfDesign = "asHSD", gammaA = -4,
       futility = "hsd", typeBetaSpending = "bsHSD", gammaB = -2),
  list(name = "asP_bsP_unequal_k3", k = 3, alpha = 0.025, beta = 0.1, sided = 1, spending = "pocock", typeOfDesign = "asP",
       informationRates = c(0.4, 0.7, 1), futility = "pocock", typeBetaSpending = "bsP"),
  list(name = "asKD_bsKD_k2", k = 2, alpha = 0.025, beta = 0.2, sided = 1, spending = "kim-demets", typeOfDesign = "asKD", gammaA = 2,
       futility = "kim-demets", typeBetaSpending = "bsKD", gammaB = 2),
  list(name = "asOF_bsHSD_k5", k = 5, alpha = 0.025, beta = 0.15, sided = 1, spending = "obrien-fleming", typeOfDesign = "asOF",
       futility = "hsd", typeBetaSpending = "bsHSD", gammaB = 1)
)

out <- list()
for (cs in cases) {
  args <- list(kMax = cs$k, alpha = cs$alpha, beta = cs$beta, sided = cs$sided, typeOfDesign = cs$typeOfDesign)
  if (!is.null(cs$gammaA)) args$gammaA <- cs$gammaA
  if (!is.null(cs$informationRates)) args$informationRates <- cs$informationRates
  if (!is.null(cs$typeBetaSpending)) {
    args$typeBetaSpending <- cs$typeBetaSpending
    args$bindingFutility <- FALSE
  }
  if (!is.null(cs$gammaB)) args$gammaB <- cs$gammaB
  d <- do.call(getDesignGroupSequential, args)
  dc <- getDesignCharacteristics(d)
  res <- list(
    name = cs$name,
    args = list(k = cs$k, alpha = cs$alpha, beta = cs$beta, sided = cs$sided, spending = cs$spending,
                gamma = cs$gammaA, information_rates = cs$informationRates, futility = cs$futility,
                gamma_futility = cs$gammaB),
    informationRates = d$informationRates,
    criticalValues = d$criticalValues,
    futilityBounds = d$futilityBounds,
    stageLevels = d$stageLevels,
    alphaSpent = d$alphaSpent,
    betaSpent = d$betaSpent,
    inflationFactor = dc$inflationFactor,
    shift = dc$shift,
    nFixed = dc$nFixed,
    power = dc$power,
    rejectionProbabilities = dc$rejectionProbabilities,
    futilityProbabilities = dc$futilityProbabilities,
    averageSampleNumber = c(dc$averageSampleNumber1, dc$averageSampleNumber01, dc$averageSampleNumber0)
  )
  cat("\n==", cs$name, "\n")
  print(d)
  cat("inflationFactor", dc$inflationFactor, " shift", dc$shift, "\n")
  out[[length(out) + 1]] <- res
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
           "rpact_group_sequential_reference.json")
