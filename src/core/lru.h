// A map that remembers use order and drops the least recently used entries: the decision cache and
// the conversation store bound their memory with it. Not locked: the owner holds its own lock.
#pragma once

#include <cstddef>
#include <list>
#include <unordered_map>
#include <utility>

namespace tinyroute {

template <class Key, class Value> class LruMap {
public:
  // The value for `key`, now the most recently used; nullptr when absent.
  Value* find(const Key& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // `key`'s value, inserted or replaced, as the most recently used.
  Value& put(const Key& key, Value value) {
    if (Value* v = find(key)) {
      *v = std::move(value);
      return *v;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    return order_.front().second;
  }

  bool erase(const Key& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Drops least recently used entries until at most `capacity` remain; returns how many it dropped.
  std::size_t trim(std::size_t capacity) {
    std::size_t dropped = 0;
    while (order_.size() > capacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
      ++dropped;
    }
    return dropped;
  }

  std::size_t size() const { return order_.size(); }
  void clear() {
    order_.clear();
    index_.clear();
  }

private:
  std::list<std::pair<Key, Value>> order_; // most recently used first
  std::unordered_map<Key, typename std::list<std::pair<Key, Value>>::iterator> index_;
};

} // namespace tinyroute
