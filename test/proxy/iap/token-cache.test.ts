import t from 'tap'
import { createTokenCache } from '../../../proxy/iap/token-cache.ts'

const verdict = (lastValidSecond: number) => ({ lastValidSecond, kid: 'k', value: 'v' })

t.test('bounded: the least recently used entry goes first', async (t) => {
  const cache = createTokenCache<string>(2)
  cache.set('a', verdict(100), 0)
  cache.set('b', verdict(100), 0)
  t.ok(cache.get('a', 0))
  cache.set('c', verdict(100), 0)
  t.equal(cache.size, 2)
  t.equal(cache.get('b', 0), undefined, 'b was evicted')
  t.ok(cache.get('a', 0))
})

t.test('an entry is valid up to and including its last valid second, never after', async (t) => {
  const cache = createTokenCache<string>(10)
  cache.set('a', verdict(100), 50)
  t.ok(cache.get('a', 100))
  t.equal(cache.get('a', 100.5), undefined)
  t.equal(cache.size, 0, 'the stale entry was dropped')
  cache.set('late', verdict(100), 100)
  t.equal(cache.size, 0, 'nothing is stored that is already at its end')
  cache.set('d', verdict(100), 0)
  cache.delete('d')
  t.equal(cache.get('d', 0), undefined)
})

t.test('size 0 disables the cache', async (t) => {
  const cache = createTokenCache<string>(0)
  cache.set('a', verdict(100), 0)
  cache.delete('a')
  t.equal(cache.get('a', 0), undefined)
  t.equal(cache.size, 0)
})
