defmodule Keyring.Store.PartialTest do
  # A blob assembled from verified streams of two providers, its progress,
  # and a lying provider, seen from Elixir (the protocol does this in Rust).
  use ExUnit.Case, async: true

  alias Keyring.Store
  alias Keyring.Test.TmpDir

  setup do
    names =
      for role <- [:a, :b, :me] do
        name = Module.concat(__MODULE__, "#{role}#{System.unique_integer([:positive])}")
        start_supervised!({Keyring, name: name, data_dir: TmpDir.new()}, id: name)
        [instance: name]
      end

    [a, b, me] = names
    %{a: a, b: b, me: me}
  end

  test "two providers, resume, completion", %{a: a, b: b, me: me} do
    data = :crypto.strong_rand_bytes(40 * 16_384 + 1_000)
    size = byte_size(data)
    {:ok, cid} = Store.put(data, a)
    {:ok, ^cid} = Store.put(data, b)

    {:ok, first} = Store.verified_stream(cid, [{0, 10}, {20, 25}], a)

    assert {:ok, {:partial, 15, 26}} =
             Store.put_verified(cid, size, [{0, 10}, {20, 25}], first, me)

    refute Store.has?(cid, me)

    assert {:ok, %{size: ^size, size_verified: false, have: have, missing: missing}} =
             Store.partial(cid, me)

    assert have == [{0, 10}, {20, 25}]
    assert missing == [{10, 20}, {25, 41}]
    assert Store.stats(me).partials == 1

    {:ok, rest} = Store.verified_stream(cid, missing, b)
    assert {:ok, {:complete, ^cid}} = Store.put_verified(cid, size, missing, rest, me)
    assert {:ok, ^data} = Store.get(cid, me ++ [verify: true])
    assert {:error, :not_found} = Store.partial(cid, me)
    assert %{partials: 0, blobs: 1} = Store.stats(me)
  end

  test "a lying provider is refused at the first bad group", %{a: a, me: me} do
    data = :crypto.strong_rand_bytes(8 * 16_384)
    {:ok, cid} = Store.put(data, a)
    {:ok, stream} = Store.verified_stream(cid, [{0, :infinity}], a)
    # Flip a byte inside group 5's bytes.
    {pos, _} = :binary.match(stream, binary_part(data, 5 * 16_384, 64))
    <<head::binary-size(pos + 9), byte, tail::binary>> = stream
    bad = <<head::binary, Bitwise.bxor(byte, 1), tail::binary>>

    assert {:error, {:bad_stream, {:group_mismatch, 5}}} =
             Store.put_verified(cid, byte_size(data), [{0, :infinity}], bad, me)

    # Everything before it was verified and kept.
    assert {:ok, %{have: [{0, 5}]}} = Store.partial(cid, me)

    # A stream of other bytes for this cid is refused outright.
    {:ok, other} = Store.put(:crypto.strong_rand_bytes(8 * 16_384), a)
    {:ok, wrong} = Store.verified_stream(other, [{5, 8}], a)

    assert {:error, {:bad_stream, {:parent_mismatch, 5}}} =
             Store.put_verified(cid, byte_size(data), [{5, 8}], wrong, me)

    assert {:ok, %{have: [{0, 5}]}} = Store.partial(cid, me)
  end

  test "a verified stream built in memory is capped at 64 MiB", %{a: a} do
    data = :binary.copy(:crypto.strong_rand_bytes(1_048_576), 65)
    {:ok, cid} = Store.put(data, a)

    assert {:error, {:too_large, "stream"}} = Store.verified_stream(cid, [{0, :infinity}], a)

    assert {:ok, stream} = Store.verified_stream(cid, [{0, 64}, {4000, 4001}], a)
    assert byte_size(stream) > 2 * 16_384
    assert {:error, :not_found} = Store.verified_stream(Keyring.Store.Cid.of("x"), [{0, 1}], a)
  end
end
