"""Dated schedule of US regulatory transaction fees on sales: SEC Section 31 and FINRA (NASD) TAF.

Host-side only (numpy/pandas). A bar's rates are looked up from its calendar date; every date outside
the sourced schedule raises `FeeScheduleError` rather than guessing.

    rates = regulatory_fee_rates(md.dates)          # float64 [T, 4], columns FEE_COLUMNS
    sec_fee = rates[:, 0] * abs(value_sold)         # dollars
    taf = min(rates[:, 1] * shares_sold, rates[:, 2])

How to read the schedule
------------------------
* Each row holds from its `start` (inclusive) until the next row's start; the last row holds until
  `SCHEDULE_VERIFIED_THROUGH`. Coverage begins at the later of the two schedules' first starts
  (`COVERAGE_START`); earlier dates raise.
* Every `source` opens with its grade:
    PRIMARY    the rate and its effective date come from the regulator (SEC release or order, statute,
               NASD/FINRA notice or rule filing), possibly read through a verbatim reprint.
    DERIVED    the rate is from a primary source and the date follows from a rule stated in a primary
               source ("30/60 days after the regular appropriation is enacted", "mid-year adjustments take
               effect April 1") applied to a sourced enactment date; the effective date itself was not read.
    SECONDARY  the rate or its date comes only from secondary material (law-firm or broker summaries,
               trade press, a tax adviser's list, other open-source fee tables).
    BOUND      no source settles the rate in this interval, which lies between two sourced rows: the row
               charges the higher of its two neighbours' rates, a labelled conservative upper bound (never
               less than what was charged), so a backtest across the gap neither stops nor flatters.
    UNSOURCED  no source settles the rate and no neighbours bound it; the row's rates are NaN and dates in
               it raise.
* The SEC rate is venue-agnostic here: Section 31 applies to "covered sales". Before NSMIA took full effect
  (Nasdaq/OTC last-sale-reported securities were brought in during 1997) off-exchange sales of Nasdaq stocks
  were not covered; this schedule does not model venue.
* Rounding (brokers round each fee up to the cent, FINRA truncates the rate) is not applied here.

`fee_schedule_table()` renders both schedules, with their sources, as markdown.
"""

from __future__ import annotations

import dataclasses
import datetime
import math

import numpy as np
import pandas as pd

FEE_COLUMNS = ("sec_rate", "taf_per_share", "taf_cap", "taf_per_option_contract")
GRADES = ("PRIMARY", "DERIVED", "SECONDARY", "BOUND", "UNSOURCED")
NAN = math.nan
INF = math.inf


@dataclasses.dataclass(frozen=True)
class SecRate:
    """SEC Section 31 fee rate effective from `start` (inclusive) until the next row."""

    start: str            # ISO date 'YYYY-MM-DD'
    per_million: float    # dollars per $1,000,000 of sales (NaN: unsourced interval)
    source: str


@dataclasses.dataclass(frozen=True)
class TafRate:
    """FINRA (NASD before 2007) Trading Activity Fee on sales, effective from `start` until the next row."""

    start: str
    per_share: float            # $ per share sold (covered equity securities)
    cap_per_trade: float        # $ cap per trade (math.inf if no cap)
    per_option_contract: float  # $ per option contract sold
    source: str


SEC_SECTION_31: tuple[SecRate, ...] = (
    SecRate("1996-10-11", 100.0 / 3.0,
            "PRIMARY: statutory rate 1/300 of one percent ($33.33 per $1M) of covered sales, Section "
            "31(b)-(d) of the Exchange Act as rewritten by the National Securities Markets Improvement "
            "Act of 1996 (Pub. L. 104-290, enacted 1996-10-11), text at 15 U.S.C. 78ee (2000 ed.), "
            "https://uscode.house.gov/"
            "view.xhtml?edition=2000&num=0&req=granuleid%3AUSC-2000-title15-section78ee; SEC testimony "
            "'Securities Transaction Fees', 1999-07-27 (fees 'enacted at a rate of 1/300th of 1 percent', "
            "structure 'last revised in 1996'), "
            "https://www.sec.gov/news/testimony/testarchive/1999/tsty2799.htm; struck by Pub. L. 107-123 "
            "sec. 2. Coverage starts at NSMIA's enactment: no source dated 1990-1996 that states the rate "
            "was found."),
    SecRate("2001-12-28", 15.00,
            "PRIMARY: SEC Fee Rate Advisory #8 (2002-01-16): Investor and Capital Markets Fee Relief Act "
            "sets the rate at $15 per $1M retroactively effective 2001-12-28, "
            "https://www.sec.gov/news/headlines/feerate8.htm; Pub. L. 107-123 sec. 2, "
            "https://www.govinfo.gov/link/plaw/107/public/123"),
    SecRate("2002-04-01", 30.10,
            "SECONDARY (date): FY2002 mid-year adjustment 'effective April 1, 2002 (announced March 1, "
            "2002)', TraderStatus SEC fee rate list, https://traderstatus.com/secfeerates.htm; rate "
            "PRIMARY: NASD Member Alert 2003-03-03 ('current rate of $30.10 per million'), "
            "https://www.finra.org/Industry/Regulation/Guidance/MemberAlerts/2003/P002772"),
    SecRate("2003-03-22", 25.20,
            "PRIMARY: SEC Fee Rate Advisories #11/#12 for FY2003 (press release 2003-27, 2003-02-28), "
            "https://www.sec.gov/news/press/2003-27.htm; NASD Member Alert 2003-02-24, "
            "https://www.finra.org/Industry/Regulation/Guidance/MemberAlerts/2003/p002773"),
    SecRate("2003-04-01", 46.80,
            "PRIMARY: SEC Fee Rate Advisory #12 for FY2003 (mid-year adjustment), press release 2003-27, "
            "https://www.sec.gov/news/press/2003-27.htm"),
    SecRate("2004-02-22", 39.00,
            "PRIMARY: NASD Member Alert 2004-01-28 citing SEC Fee Rate Advisory #7 for FY2004, "
            "https://www.finra.org/Industry/Regulation/Guidance/MemberAlerts/2004/P002753"),
    SecRate("2004-04-01", 23.40,
            "PRIMARY: NASD Member Alert 2004-03-04 citing SEC Fee Rate Advisory #8 for FY2004 (mid-year), "
            "https://www.finra.org/Industry/Regulation/Guidance/MemberAlerts/2004/P002749"),
    SecRate("2005-01-07", 32.90,
            "PRIMARY: SEC Fee Rate Advisory #6 for FY2005 (2004-12-09), verbatim reprint at "
            "https://mondovisione.com/media-and-resources/news/"
            "sec-fee-rate-advisory-6-for-fiscal-year-2005"),
    SecRate("2005-04-01", 41.80,
            "SECONDARY (date): FY2005 mid-year adjustment effective April 1, 2005 (Fee Rate Advisory #7 "
            "for FY2005), TraderStatus list, https://traderstatus.com/secfeerates.htm; rate PRIMARY: NASD "
            "Member Alert 2005-09-30 ('current rate of $41.80 per million'), "
            "https://www.finra.org/Industry/Regulation/Guidance/MemberAlerts/2005/P015087"),
    SecRate("2005-12-22", 30.70,
            "SECONDARY (date): 'effective December 22, 2005', TraderStatus list, "
            "https://traderstatus.com/secfeerates.htm; rate and rule PRIMARY: NASD Member Alert "
            "2005-09-30 (falls to $30.70 thirty days after the FY2006 appropriation); SEC Fee Rate "
            "Advisory #4 for FY2007 (2006-11-17, 'current rate of $30.70'), "
            "https://www.sec.gov/news/press/2006/2006-194.htm"),
    SecRate("2007-03-17", 15.30,
            "DERIVED: SEC Fee Rate Advisory #4 for FY2007 (the rate falls to $15.30 thirty days after the "
            "regular FY2007 appropriation), https://www.sec.gov/news/press/2006/2006-194.htm; H.J.Res. 20 "
            "signed 2007-02-15 and deemed the SEC's regular FY2007 appropriation (Credit Union Times "
            "2007-03-06, secondary), "
            "https://www.cutimes.com/2007/03/06/sec-says-700-million-fee-cut-will-benefit-investors/; "
            "$15.30 confirmed current by SEC Fee Rate Advisory #1 for FY2008 (2007-05-07), "
            "https://www.sec.gov/news/press/2007/2007-89.htm"),
    SecRate("2008-01-25", 11.00,
            "DERIVED: SEC Fee Rate Advisory #1 for FY2008 (2007-05-07: later of 2007-10-01 or 30 days "
            "after the FY2008 regular appropriation), https://www.sec.gov/news/press/2007/2007-89.htm; "
            "Consolidated Appropriations Act 2008, Pub. L. 110-161, enacted 2007-12-26, "
            "https://www.gpo.gov/fdsys/pkg/PLAW-110publ161/html/PLAW-110publ161.htm; $11.00 confirmed "
            "current by FINRA Information Notice 2008-03-10, "
            "https://www.finra.org/rules-guidance/notices/information-notice-031008"),
    SecRate("2008-04-01", 5.60,
            "PRIMARY: FINRA Information Notice 2008-03-10 (FY2008 mid-year adjustment, $11.00 to $5.60 "
            "effective April 1, 2008), "
            "https://www.finra.org/rules-guidance/notices/information-notice-031008"),
    SecRate("2009-04-01", 25.70,
            "BOUND (the higher neighbour, $25.70 of 2009-04-10, over $5.60): no FY2009 fee rate "
            "advisory was found. The Omnibus Appropriations Act 2009 was "
            "enacted 2009-03-11 (Goodwin alert 2009-03-11); the FY2009 rate took effect 30 days later "
            "(2009-04-10) under the rule every FY2003-FY2011 order used, but a mid-year adjustment "
            "effective April 1 cannot be excluded for 2009-04-01..2009-04-09."),
    SecRate("2009-04-10", 25.70,
            "DERIVED: Omnibus Appropriations Act 2009 enacted 2009-03-11 (Pub. L. 111-8, "
            "https://www.govinfo.gov/content/pkg/PLAW-111publ8/html/PLAW-111publ8.htm) + 30 days; $25.70 "
            "is the rate in force per SEC Fee Rate Advisory #1 for FY2010 (after the 2009-04-30 order, "
            "'decrease from $25.70'), https://sec.gov/news/press/2009/2009-100.htm, and FINRA Information "
            "Notice 2009-10-02, https://www.finra.org/industry/information-notice-122009"),
    SecRate("2010-01-15", 12.70,
            "PRIMARY: SEC press release 2009-270 (2009-12-17; effective January 15, 2010 the rate "
            "decreases to $12.70), https://www.sec.gov/news/press/2009/2009-270.htm (read via the "
            "Lexology summary)"),
    SecRate("2010-04-01", 16.90,
            "PRIMARY: FINRA Information Notice 2010-03-10 (FY2010 mid-year adjustment, $12.70 to $16.90 "
            "effective April 1, 2010), https://www.finra.org/industry/notices/information-notice-031010"),
    SecRate("2011-01-21", 19.20,
            "PRIMARY: SEC Fee Rate Advisory #5 for FY2011 (press release 2010-255, 2010-12-22: $16.90 to "
            "$19.20 effective Jan. 21, 2011), https://www.sec.gov/news/press/2010/2010-255.htm"),
    SecRate("2012-02-21", 18.00,
            "SECONDARY: SEC Fee Rate Advisory #5 for FY2012 and Order 34-66202 (2012-01-20, 77 FR 3818; "
            "$19.20 to $18.00 effective February 21) as summarized by Corporate & Financial Weekly "
            "Digest, "
            "https://www.corporatefinancialweeklydigest.com/2012/01/articles/seccorporate-1/"
            "sec-reduces-exchange-act-fees-for-securities-transactions/"),
    SecRate("2012-04-01", 22.40,
            "DERIVED: SEC Order Making FY2012 Mid-Year Adjustments to Transaction Fee Rates (77 FR 13663, "
            "2012-03-07), https://regulations.justia.com/regulations/fedreg/2012/03/07/2012-5453.html; "
            "the April 1 effective date is the Section 31(j)(2) mid-year rule (order text not read); "
            "$22.40 confirmed current by SEC Fee Rate Advisory #2 for FY2013 (2012-11-15), "
            "https://www.sec.gov/news/press-release/2012-2012-232htm"),
    SecRate("2013-05-25", 17.40,
            "DERIVED: SEC Order 34-69449 (2013-04-25, 78 FR 25515) treats the continuing resolution "
            "signed 2013-03-26 as the FY2013 regular appropriation, "
            "https://regulations.justia.com/regulations/fedreg/2013/05/01/2013-10194.html; new rate "
            "effective 60 days after it (SEC Fee Rate Advisory #2 for FY2013); $17.40 confirmed current "
            "by FINRA Information Notice 2014-03-03, "
            "https://finra.org/rules-guidance/notices/information-notice-030314"),
    SecRate("2014-03-18", 22.10,
            "PRIMARY: FINRA Information Notice 2014-03-03 ($17.40 to $22.10 effective March 18, 2014), "
            "https://finra.org/rules-guidance/notices/information-notice-030314; unchanged into FY2015 "
            "per FINRA Information Notice 2014-10-07, "
            "https://www.finra.org/industry/information-notice-100714"),
    SecRate("2015-02-14", 22.10,
            "BOUND (the higher neighbour, $22.10 of 2014-03-18, over $21.80 of 2016-02-16): "
            "the FY2015 rate (SEC Order 34-74057, 2015-01-15, 80 FR 2978) was not read. The "
            "order was due within 30 days of the appropriation and takes effect 60 days after it, so "
            "$22.10 is certain only through 2015-02-13; the FY2016 rate $21.80 starts 2016-02-16."),
    SecRate("2016-02-16", 21.80,
            "SECONDARY (date): SEC Order 34-76848, Order Making Fiscal Year 2016 Annual Adjustments to "
            "Transaction Fee Rates (2016-01-12, 81 FR 1458, located, text not read here: "
            "https://regulations.justia.com/regulations/fedreg/2016/01/12/2016-00406.html), operative "
            "sentence ('shall be $21.80 per $1,000,000 effective on February 16, 2016') as quoted "
            "verbatim in the open-source table github.com/seathatflowsinourveins/native-agent-stack "
            "blueprints/us-equities/mover-v3/data/fees-v3.json; rate PRIMARY: FINRA Information Notice "
            "2016-03-15 (SEC announced 2016-02-25 the rate 'will remain at the current rate of $21.80' "
            "until the later of 2016-09-30 or 60 days after the FY2017 appropriation), "
            "https://www.finra.org/rules-guidance/notices/information-notice-031516. No change between "
            "then and 2017-07-03: the FY2017 order (82 FR 25895) estimates collections 'for the period "
            "October 1, 2016 through July 3, 2017' at 'the current fee rate of $21.80' (same table)."),
    SecRate("2017-07-04", 23.10,
            "DERIVED: SEC Order 34-80816, Order Making Fiscal Year 2017 Annual Adjustments to Transaction "
            "Fee Rates (2017-05-31, 82 FR 25895): 'On May 5, 2017, the President signed into law the "
            "Consolidated Appropriations Act, 2017', http://federal.elaws.us/fr/6/5/2017/2017-11555; "
            "the new rate takes effect 60 days after the appropriation (Section 31(k) as amended by "
            "Dodd-Frank sec. 991) = 2017-07-04; the order's operative sentence ('$23.10 per $1,000,000 "
            "effective on July 4, 2017') is quoted verbatim in the native-agent-stack fees-v3.json "
            "table above; rate PRIMARY: FINRA Information Notice 2018-05-07 ('current rate of "
            "$23.10'), https://www.finra.org/rules-guidance/notices/information-notice-050718."),
    SecRate("2018-05-22", 13.00,
            "PRIMARY: FINRA Information Notice 2018-05-07 ($23.10 to $13.00 effective May 22, 2018), "
            "https://www.finra.org/rules-guidance/notices/information-notice-050718"),
    SecRate("2019-04-16", 20.70,
            "SECONDARY: FINRA Information Notice (April 2019) and SEC Fee Rate Advisory #2 for FY2019 "
            "($13.00 through April 15, 2019; $20.70 from April 16, 2019) as quoted by FTF News, "
            "https://ftfnews.com/finra-ups-key-fees-by-59-percent; SEC Order 34-85287 (2019-03-11, 84 FR "
            "9576)"),
    SecRate("2020-02-18", 22.10,
            "SECONDARY: FINRA Information Notice 2020-02-03 ($20.70 to $22.10 effective February 18, "
            "2020) as summarized by Corporate & Financial Weekly Digest, "
            "https://www.corporatefinancialweeklydigest.com/2020/02/articles/broker-dealer-1/"
            "new-rate-for-fees-paid-under-section-31-of-the-exchange-act/"),
    SecRate("2021-02-25", 5.10,
            "SECONDARY: SEC Fee Rate Advisory #2 for FY2021 (2021-01-15, press release 2021-8; $22.10 "
            "through 2021-02-24, $5.10 from 2021-02-25) as summarized by Novaworks, "
            "https://novaworkssofware.com/blog/archives/"
            "677-Second-Fee-Rate-Advisory-for-Fiscal-Year-2021.html; DriveWealth docs "
            "https://developer.drivewealth.com/implementation/docs/sec-taf-fees"),
    SecRate("2022-05-14", 22.90,
            "SECONDARY (weak): FY2022 order not read. $22.90 from 2022-05-14 per the dated table "
            "SEC_FEE_RATES in github.com/bennycode/trading-signals (AlpacaFees.ts, stated to be read from "
            "the SEC orders and reconciled with live Alpaca REG charges); $0.0000229 also quoted by "
            "broker fee pages (https://optionsroute.com/routing-fees/)."),
    SecRate("2023-02-27", 8.00,
            "SECONDARY: given in the issue; SEC Order 34-96724 (2023-01-23, 88 FR 5051) located but not "
            "read, https://federalstatelaw.com/federal-register/2023-01578; $8.00 per $1M quoted by "
            "broker pages (https://help.m1.com/hc/en-us/articles/221056287, "
            "https://www.autoshares.com/routing-fees/) and the bennycode/trading-signals table (from "
            "2023-02-27)."),
    SecRate("2024-05-22", 27.80,
            "DERIVED: SEC Order 34-99973 (2024-04-17, 89 FR 29402): the FY2024 appropriation was signed "
            "2024-03-23, https://federalstatelaw.com/federal-register/2024-08512; effective 60 days "
            "later; the $27.80 figure is from the issue, FINRA Information Notice 2025-04-24 ('from "
            "$27.80'), and the Security Traders Association, "
            "https://securitytraders.org/ceo-desk/"
            "congrats-stock-traders-you-funded-the-sec-four-months-early/"),
    SecRate("2025-05-14", 0.00,
            "SECONDARY: FINRA Information Notice 2025-04-24 ($27.80 to $0.00 for charge dates on or after "
            "May 14, 2025), https://www.finra.org/rules-guidance/notices/information-notice-20250424, "
            "read through the summary at "
            "https://reg-monitoring.pages.dev/updates/finra-information-notice-4-24-25-8f06cd; Security "
            "Traders Association (SEC announcement of 2025-04-08); given in the issue."),
    SecRate("2026-04-04", 20.60,
            "SECONDARY (beyond SCHEDULE_VERIFIED_THROUGH, not used until verified): SEC Order 34-104909 "
            "(2026-02-27, 91 FR 10643) located, rate not read, "
            "https://federalstatelaw.com/federal-register/2026-04233; $20.60 from 2026-04-04 per the "
            "bennycode/trading-signals table and other open-source fee notes citing "
            "https://www.sec.gov/rules-regulations/fee-rate-advisories/2026-2."),
)

FINRA_TAF: tuple[TafRate, ...] = (
    TafRate("1996-10-11", 0.0, INF, 0.0,
            "PRIMARY: no TAF existed before 2002-10-01. NASD instituted the transaction-based TAF "
            "(replacing its Regulatory Fee) in SR-NASD-2002-98 (by-law amendment effective 2002-07-24, "
            "initial rates effective 2002-10-01), "
            "https://www.finra.org/industry/rule-filings/sr-nasd-2002-098; NASD Notice to Members 05-61, "
            "https://www.finra.org/industry/notices/05-61"),
    TafRate("2002-10-01", 0.0001, 10.00, 0.002,
            "SECONDARY: NASD 'Adjustment to NASD Trading Activity Fee Initial Rates' (2002-10-17; $0.0001 "
            "per share sold with a $10 per-trade maximum, $0.002 per option contract, retroactive to "
            "2002-10-01) as quoted at https://www.elitetrader.com/et/threads/new-nasd-fee.21748/ (pilot "
            "SR-NASD-2002-98)."),
    TafRate("2002-12-31", 0.0001, 10.00, 0.002,
            "BOUND (both neighbours are $0.0001 / $10 / $0.002): "
            "the pilot expired 2002-12-31 and was extended to 2003-03-01 'to maintain the "
            "status quo' (SR-NASD-2002-182, "
            "https://www.finra.org/industry/rule-filings/sr-nasd-2002-182), then made permanent "
            "(SR-NASD-2002-148, approved 2003-05-30, NtM 03-30, "
            "https://www.finra.org/industry/notices/03-30). Before 2003-09-01 the equity rate was "
            "$0.00005 per share with a $5 cap (Traders Magazine 2003-09-30), but when it changed from "
            "$0.0001/$10 is not established."),
    TafRate("2003-09-01", 0.0001, 10.00, 0.002,
            "SECONDARY: date PRIMARY, NASD Notice to Members 03-43 (new covered-equity rate effective "
            "2003-09-01, SR-NASD-2003-93), https://www.finra.org/industry/notices/03-43; rate and cap: "
            "Traders Magazine 2003-09-30 ('raised from $0.00005 per share to $0.0001 per share on "
            "September 1st ... maximum charge per trade to be raised from $5 to $10'), "
            "https://www.tradersmagazine.com/issues/20030930/1704-1.html; option rate: no change found "
            "since the 2002 initial rate."),
    TafRate("2004-11-01", 0.000075, 3.75, 0.002,
            "PRIMARY (equity): NASD Notice to Members 04-84 (reduced covered-equity rate and per-trade "
            "maximum effective 2004-11-01), "
            "https://www.finra.org/Industry/Regulation/Notices/2004/P012351; FINRA Regulatory Notice "
            "11-27 ($0.000075 and $3.75 cap 'in place for over six years'), "
            "https://finra.org/rules-guidance/notices/11-27; option rate SECONDARY (no change found)."),
    TafRate("2011-07-01", 0.000090, 4.50, 0.002,
            "PRIMARY (equity): FINRA Regulatory Notice 11-27 ($0.000075 to $0.000090, cap $3.75 to $4.50, "
            "effective 2011-07-01), https://finra.org/rules-guidance/notices/11-27; option rate SECONDARY."),
    TafRate("2012-03-01", 0.000095, 4.75, 0.002,
            "PRIMARY (equity): FINRA Regulatory Notice 12-06 ($0.000090 to $0.000095, cap $4.50 to $4.75, "
            "effective 2012-03-01), https://www.finra.org/industry/notices/12-06; option rate SECONDARY."),
    TafRate("2012-07-01", 0.000119, 5.95, 0.002,
            "SECONDARY (equity): SR-FINRA-2012-023 (notice of filing 77 FR 27527, 2012-05-10; approved by "
            "SEC Release 34-67242, 77 FR 38690, 2012-06-28, "
            "https://regulations.justia.com/regulations/fedreg/2012/06/28/2012-15806.html, located, text "
            "not read here): 'increase the TAF rate ... from $0.000095 per share to $0.000119 per share' "
            "and the cap 'from $4.75 to $5.95', 'effective on July 1, 2012'; FINRA By-Laws Schedule A "
            "sec. 1 version 'Jul 01, 2012 - Sep 30, 2012' ('Amended by SR-FINRA-2012-023 eff. July 1, "
            "2012') and the unchanged $0.000119/$5.95 text in the versions Oct 2012 - Dec 2014, Jan 2015 "
            "- Jul 09 2017 and Jul 10 2017 - Dec 2021 -- all as quoted verbatim in the open-source table "
            "github.com/seathatflowsinourveins/native-agent-stack "
            "blueprints/us-equities/mover-v3/data/fees-v3.json. So $0.000095/$4.75 held until "
            "2012-06-30. The 2012-10-01 change was to security futures only (FINRA Regulatory Notice "
            "12-41, https://www.finra.org/industry/notices/12-41). $0.000119/$5.95 also quoted by Motif "
            "Investing (with SEC $23.10, 2017-18), alarictrader.com, autoshares.com ('as of Jan 2020', "
            "with $0.002 per option contract), DriveWealth and Gotrade (2021). Option rate SECONDARY (no "
            "change found since 2002)."),
    TafRate("2022-01-01", 0.000130, 6.49, 0.00218,
            "SECONDARY: calendar-year phase-in of FINRA's fee filing SR-FINRA-2020-032 (85 FR 66592, "
            "2020-10-20, https://regulations.justia.com/regulations/fedreg/2020/10/20/2020-23141.html; "
            "TAF table not read); values quoted by optionsroute.com alongside the SEC rate $22.90 (in "
            "force from 2022-05-14), https://optionsroute.com/routing-fees/"),
    TafRate("2023-01-01", 0.000145, 7.27, 0.00244,
            "SECONDARY: phase-in of SR-FINRA-2020-032 (as above); values quoted by M1 Finance and "
            "autoshares.com alongside SEC $8.00 and by eddidusa.com alongside SEC $22.90 (so in force "
            "before 2023-02-27), https://help.m1.com/hc/en-us/articles/221056287, "
            "https://www.autoshares.com/routing-fees/"),
    TafRate("2024-01-01", 0.000166, 8.30, 0.00279,
            "SECONDARY: FINRA By-Laws Schedule A sec. 1(b) text ('$0.000166 per share ... maximum charge "
            "of $8.30 per trade; $0.00279 per contract for each sale of an option') as quoted, with "
            "'20240101' as the start of 2024 fees, in a broker-dealer billing script, from "
            "https://www.finra.org/rules-guidance/rulebooks/corporate-organization/"
            "section-1-member-regulatory-fees; Double Finance fee schedule alongside SEC $8.00 (so in "
            "force before 2024-05-22); no TAF change in 2025: SR-FINRA-2024-019 schedules TAF changes for "
            "2026-2029 only (89 FR 93709, 2024-11-27), "
            "https://www.govinfo.gov/content/pkg/FR-2024-11-27/html/2024-27764.htm"),
    TafRate("2026-01-01", 0.000195, 9.79, NAN,
            "SECONDARY (beyond SCHEDULE_VERIFIED_THROUGH, not used until verified): SR-FINRA-2024-019 "
            "schedules a 2026 TAF change (table not read); $0.000195 per share with a $9.79 maximum per "
            "open-source fee notes dated 2026; the 2026 option rate is contradictory there ($0.00279 vs "
            "$0.00329) and left NaN. One note also reports TAF collection paused for "
            "2026-10-01..2026-12-31 (unverified)."),
)

# Last date both schedules are known to hold (the FY2026 SEC rate, the 2026 TAF rates and a reported
# Q4-2026 TAF pause are secondary or contradictory; see the last rows). Later dates raise.
SCHEDULE_VERIFIED_THROUGH = "2025-12-31"

COVERAGE_START = max(SEC_SECTION_31[0].start, FINRA_TAF[0].start)


def source_grade(source: str) -> str:
    """The grade a row's `source` opens with: one of GRADES."""
    head = source.split(":", 1)[0].split(" ", 1)[0]
    if head not in GRADES:
        raise ValueError(f"source does not open with a grade {GRADES}: {source[:60]!r}")
    return head


class FeeScheduleError(ValueError):
    """A date the regulatory-fee schedule does not cover (or covers only with an unsourced gap)."""

    def __init__(self, date: str, reason: str):
        self.date, self.reason = date, reason
        self.covered = (COVERAGE_START, SCHEDULE_VERIFIED_THROUGH)
        super().__init__(
            f"regulatory fee schedule has no sourced rate for {date}: {reason}. The schedule covers "
            f"{COVERAGE_START}..{SCHEDULE_VERIFIED_THROUGH} (see jaxtrade.data.fees.fee_schedule_table()). "
            f"To run anyway set env.costs.regulatory_fees=\"flat\" with explicit rates (sec_fee_rate, "
            f"finra_taf_per_share, finra_taf_cap), or \"none\" to charge no regulatory fees.")


def _day(iso: str) -> np.datetime64:
    return np.datetime64(iso, "D")


def _check_schedules() -> None:
    """Import-time guard: ISO starts, strictly increasing; graded sources; NaN only where not sourced."""
    for name, rows in (("SEC_SECTION_31", SEC_SECTION_31), ("FINRA_TAF", FINRA_TAF)):
        starts = [_day(r.start) for r in rows]
        for r, d in zip(rows, starts, strict=True):
            if str(d) != r.start:
                raise RuntimeError(f"{name}: start {r.start!r} is not an ISO date")
            values = dataclasses.astuple(r)[1:-1]
            nan = [math.isnan(v) for v in values]
            if source_grade(r.source) == "UNSOURCED":
                ok = all(nan)
            elif source_grade(r.source) == "BOUND":   # between two sourced rows, the higher of them
                i = rows.index(r)
                ok = not any(nan) and 0 < i < len(rows) - 1 and all(
                    v == max(a, b) for v, a, b in zip(values, dataclasses.astuple(rows[i - 1])[1:-1],
                                                      dataclasses.astuple(rows[i + 1])[1:-1], strict=True))
            else:   # a sourced row is complete, except one recorded past the verified date
                ok = (not any(nan) or r.start > SCHEDULE_VERIFIED_THROUGH) and not math.isnan(values[0])
            if not ok or any(v < 0 for v in values if not math.isnan(v)):
                raise RuntimeError(f"{name} {r.start}: UNSOURCED rows carry NaN rates, sourced rows do not, "
                                   "BOUND rows the higher of their neighbours' rates")
        if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise RuntimeError(f"{name}: starts must be strictly increasing")


_check_schedules()

_SEC_STARTS = np.array([_day(r.start) for r in SEC_SECTION_31])
_SEC_VALUES = np.array([[r.per_million / 1e6] for r in SEC_SECTION_31], dtype=np.float64)
_TAF_STARTS = np.array([_day(r.start) for r in FINRA_TAF])
_TAF_VALUES = np.array([[r.per_share, r.cap_per_trade, r.per_option_contract] for r in FINRA_TAF],
                       dtype=np.float64)
_FIRST, _LAST = _day(COVERAGE_START), _day(SCHEDULE_VERIFIED_THROUGH)


def _calendar_days(dates) -> np.ndarray:
    """datetime64[D] [T] of each date's own calendar day (wall clock of a tz-aware stamp); NaT kept."""
    if isinstance(dates, (str, datetime.date, np.datetime64)):   # one date (pd.Timestamp is a date too)
        dates = [dates]
    idx = pd.DatetimeIndex(pd.to_datetime(dates))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.values.astype("datetime64[D]")


def _lookup(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rates [T, 4] (NaN where uncovered) and the row index [T] into each schedule (-1 before it)."""
    out = np.full((len(days), len(FEE_COLUMNS)), np.nan)
    valid = ~np.isnat(days)
    inside = valid & (days >= _FIRST) & (days <= _LAST)
    sec_i = np.searchsorted(_SEC_STARTS, days, side="right") - 1
    taf_i = np.searchsorted(_TAF_STARTS, days, side="right") - 1
    rows = np.flatnonzero(inside)
    out[rows, 0] = _SEC_VALUES[sec_i[rows], 0]
    out[rows, 1:] = _TAF_VALUES[taf_i[rows]]
    return out, np.stack([sec_i, taf_i], axis=1)


def _reason(day: np.datetime64, sec_i: int, taf_i: int) -> str:
    if np.isnat(day):
        return "the date is missing (NaT)"
    if day < _FIRST:
        return f"it is before the first sourced rate ({COVERAGE_START})"
    if day > _LAST:
        return f"it is after SCHEDULE_VERIFIED_THROUGH ({SCHEDULE_VERIFIED_THROUGH})"
    for name, rows, i in (("SEC Section 31", SEC_SECTION_31, sec_i), ("FINRA TAF", FINRA_TAF, taf_i)):
        r = rows[i]
        if source_grade(r.source) == "UNSOURCED" or any(
                math.isnan(v) for v in dataclasses.astuple(r)[1:-1]):
            end = rows[i + 1].start if i + 1 < len(rows) else SCHEDULE_VERIFIED_THROUGH
            return (f"it falls in the {name} row from {r.start} (until {end}) that is not sourced "
                    f"({r.source[:160]})")
    return "no rate"


def regulatory_fee_rates_or_nan(dates) -> tuple[np.ndarray, str | None]:
    """The `regulatory_fee_rates` table with NaN rows outside the schedule (and in its unsourced intervals),
    and the first uncovered date as 'YYYY-MM-DD' ('NaT' for a missing date), or None if all are covered."""
    days = _calendar_days(dates)
    out, _ = _lookup(days)
    bad = np.flatnonzero(np.isnan(out).any(axis=1))
    first = None if len(bad) == 0 else ("NaT" if np.isnat(days[bad[0]]) else str(days[bad[0]]))
    out[bad] = np.nan
    return out, first


def regulatory_fee_rates(dates) -> np.ndarray:
    """float64 [T, 4] for a DatetimeIndex / array-like of dates: columns
    (sec_rate per $ sold = per_million / 1e6, taf_per_share, taf_cap_per_trade, taf_per_option_contract).
    Lookup by the calendar date of each bar (intraday times ignored; a tz-aware stamp uses its own wall-clock
    date). Raises FeeScheduleError naming the first date outside [first start, SCHEDULE_VERIFIED_THROUGH]
    or inside an unsourced interval."""
    days = _calendar_days(dates)
    out, idx = _lookup(days)
    bad = np.flatnonzero(np.isnan(out).any(axis=1))
    if len(bad):
        k = bad[0]
        date = "NaT" if np.isnat(days[k]) else str(days[k])
        raise FeeScheduleError(date, _reason(days[k], int(idx[k, 0]), int(idx[k, 1])))
    return out


def _money(x: float, digits: int, *, strip: bool = True) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "none"
    text = f"{x:.{digits}f}"
    if strip:
        return text.rstrip("0").rstrip(".") if x else "0"
    return text


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def fee_schedule_table() -> str:
    """Both schedules, with every row's grade and source, as markdown (for docs)."""
    def end(rows, i):   # last day the row is used: the day before the next start, capped at verified
        if rows[i].start > SCHEDULE_VERIFIED_THROUGH:
            return "not used (after verified-through)"
        last = _day(rows[i + 1].start) - np.timedelta64(1, "D") if i + 1 < len(rows) else _LAST
        return f"{SCHEDULE_VERIFIED_THROUGH} (verified through)" if last >= _LAST else str(last)

    lines = [f"Coverage: {COVERAGE_START} .. {SCHEDULE_VERIFIED_THROUGH}; "
             "other dates raise FeeScheduleError.",
             "Rows past the verified date are recorded for the next update and are not used.", "",
             "### SEC Section 31 fee (on the dollar value sold)", "",
             "| from | to | $ per $1M | rate per $ | grade | source |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(SEC_SECTION_31):
        rate = "n/a" if math.isnan(r.per_million) else f"{r.per_million / 1e6:.9g}"
        per_million = _money(r.per_million, 2, strip=False)
        lines.append(f"| {r.start} | {end(SEC_SECTION_31, i)} | {per_million} | {rate} | "
                     f"{source_grade(r.source)} | {_md(r.source)} |")
    lines += ["", "### FINRA (NASD before 2007) Trading Activity Fee (on sales)", "",
              "| from | to | $ per share | cap $ per trade | $ per option contract | grade | source |",
              "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(FINRA_TAF):
        lines.append(f"| {r.start} | {end(FINRA_TAF, i)} | {_money(r.per_share, 6)} | "
                     f"{_money(r.cap_per_trade, 2, strip=False)} | {_money(r.per_option_contract, 5)} | "
                     f"{source_grade(r.source)} | {_md(r.source)} |")
    return "\n".join(lines) + "\n"
