#!/usr/bin/python3
"""Labelled transaction files laid out like three public fraud data sets, for bench/fraud_any.sh
(lepton-fraud against XGBoost on data shaped unlike the project's simulator). Synthetic: only
the columns, their names and types follow the originals; the fraud signal is planted and simple.
  creditcard  Kaggle's creditcard.csv: Time, V1..V28, Amount, "Class" (quoted); fraud 1%,
              shifted +2 on V1..V4 (a linear boundary)
  paysim      PaySim: step, type, amount, nameOrig, balances, nameDest, isFraud; fraud 3% of
              TRANSFER / CASH_OUT, 5x larger amounts, origin account emptied
  sparkov     Sparkov: unnamed index, date-time text, cc_num, merchant, category, amt, card
              holder fields, trans_num, unix_time, is_fraud; fraud 1%, 8x larger amounts
Each has 20,000 rows split in file order, 14,000 train / 6,000 test: OUT/NAME_{train,test}.csv.

usage: /usr/bin/python3 bench/fraud_lookalike.py OUT_DIR [SEED]
"""
import datetime
import os
import random
import sys

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
os.makedirs(out, exist_ok=True)


def write(name, header, rows):
    for part, sl in (("train", rows[:14000]), ("test", rows[14000:])):
        with open(os.path.join(out, "%s_%s.csv" % (name, part)), "w") as f:
            f.write(header + "\n")
            f.writelines(sl)


rng = random.Random(seed)
rows, t = [], 0.0
for i in range(20000):
    t += rng.expovariate(1 / 8.0)
    y = 1 if rng.random() < 0.01 else 0
    v = [rng.gauss(2.0 if (y and k < 4) else 0, 1) for k in range(28)]
    amt = round(rng.expovariate(1 / 80), 2)
    rows.append("%.1f," % t + ",".join("%.6f" % x for x in v) + ',%.2f,"%d"\n' % (amt, y))
write("creditcard", '"Time",' + ",".join('"V%d"' % i for i in range(1, 29)) + ',"Amount","Class"',
      rows)

rows = []
for i in range(20000):
    step = 1 + i // 200
    ty = rng.choice(["PAYMENT", "TRANSFER", "CASH_OUT", "DEBIT", "CASH_IN"])
    y = 1 if (ty in ("TRANSFER", "CASH_OUT") and rng.random() < 0.03) else 0
    amt = round(rng.expovariate(1 / 1000) * (5 if y else 1), 2)
    ob = round(rng.uniform(0, 1e4), 2)
    nb = 0.0 if y else max(0, ob - amt)
    rows.append("%d,%s,%.2f,C%d,%.2f,%.2f,M%d,0.0,0.0,%d,0\n" % (
        step, ty, amt, rng.randint(1, 3000), ob, nb, rng.randint(1, 500), y))
write("paysim", "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,"
      "newbalanceDest,isFraud,isFlaggedFraud", rows)

rows, base = [], datetime.datetime(2019, 1, 1)
for i in range(20000):
    ts = base + datetime.timedelta(seconds=i * 90 + rng.randint(0, 80))
    cc = rng.randint(1, 800) * 1000003 + 4000000000000
    y = 1 if rng.random() < 0.01 else 0
    amt = round(rng.expovariate(1 / 60) * (8 if y else 1), 2)
    cat = rng.choice(["grocery_pos", "gas_transport", "shopping_net", "misc_net"])
    rows.append('%d,%s,%d,"fraud_Kirlin, and Sons",%s,%.2f,Jennifer,Banks,F,"561 Perry Cove",'
                'Moravian Falls,NC,28654,36.0788,-81.1781,3495,"Psychologist, counselling",'
                '1988-03-09,%032x,%d,36.011293,-82.048315,%d\n' % (
                    i, ts.strftime("%Y-%m-%d %H:%M:%S"), cc, cat, amt, rng.getrandbits(128),
                    int(ts.replace(tzinfo=datetime.timezone.utc).timestamp()), y))
write("sparkov", ",trans_date_trans_time,cc_num,merchant,category,amt,first,last,gender,street,"
      "city,state,zip,lat,long,city_pop,job,dob,trans_num,unix_time,merch_lat,merch_long,is_fraud",
      rows)
