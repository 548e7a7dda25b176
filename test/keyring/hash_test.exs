defmodule Keyring.HashTest do
  use ExUnit.Case, async: true

  doctest Keyring.Hash

  test "sliced hashing of large inputs equals one native pass and any streaming" do
    data = :crypto.strong_rand_bytes(3 * 1024 * 1024 + 7)
    one_shot = Keyring.Hash.hash(data)
    # The whole input in one native call (what hash/1 avoids: ~2 ms).
    assert Keyring.Native.blake3_hash(data) == one_shot

    pieces = for <<piece::binary-size(200_000) <- binary_part(data, 0, 3_000_000)>>, do: piece
    tail = binary_part(data, 3_000_000, byte_size(data) - 3_000_000)
    assert Keyring.Hash.hash_stream(pieces ++ [tail]) == one_shot
    assert Keyring.Hash.hash_stream([data]) == one_shot
    assert Keyring.Hash.hash_stream([["a", "b"], "c"]) == Keyring.Hash.hash("abc")
  end

  test "non-binary input raises ArgumentError" do
    assert_raise ArgumentError, fn -> Keyring.Hash.hash(123) end
    assert_raise ArgumentError, fn -> Keyring.Hash.update(Keyring.Hash.new(), :atom) end
  end
end
