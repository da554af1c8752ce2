// Mocha's spec reporter, ending with the one line CI reads: `N passed, N failed`.
const Mocha = require('mocha')

class RealmReporter extends Mocha.reporters.Spec {
  constructor (runner, options) {
    super(runner, options)
    runner.once('end', () => {
      const { passes, failures } = this.stats
      process.stdout.write(`${passes} passed, ${failures} failed\n`)
    })
  }
}

module.exports = RealmReporter
