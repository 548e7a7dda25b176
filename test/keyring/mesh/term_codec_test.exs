defmodule Keyring.Mesh.TermCodecTest do
  use ExUnit.Case, async: true

  alias Keyring.Mesh.TermCodec

  # Law checked: decode(encode(t)) == t for every term the codec carries
  # (integers within 64 bits, floats, binaries, existing atoms, proper lists,
  # tuples, maps).
  test "round trip law (PropEr, 300 cases)" do
    property =
      :proper.forall(codec_term(), fn t ->
        {:ok, bytes} = TermCodec.encode(t)
        TermCodec.decode(bytes) == {:ok, t}
      end)

    assert :proper.quickcheck(property, [{:numtests, 300}, {:max_size, 12}, :quiet]) == true
  end

  defp codec_term do
    leaf =
      :proper_types.oneof([
        :proper_types.integer(-Bitwise.bsl(1, 63), Bitwise.bsl(1, 63) - 1),
        :proper_types.float(),
        :proper_types.binary(),
        :proper_types.oneof([:ok, :error, nil, true, false, :keyring])
      ])

    :proper_types.sized(fn size -> nested(leaf, min(size, 4)) end)
  end

  defp nested(leaf, 0), do: leaf

  defp nested(leaf, n) do
    inner = :proper_types.lazy(fn -> nested(leaf, n - 1) end)

    :proper_types.frequency([
      {3, leaf},
      {1, :proper_types.list(inner)},
      {1, :proper_types.bind(:proper_types.list(inner), &List.to_tuple/1, false)},
      {1,
       :proper_types.bind(
         :proper_types.list(:proper_types.tuple([leaf, inner])),
         &Map.new/1,
         false
       )}
    ])
  end

  test "unknown atoms are refused, never created" do
    name = "keyring_never_seen_#{System.unique_integer([:positive])}"
    bytes = <<1, 4, byte_size(name)>> <> name
    assert {:error, {:unknown_atom, ^name}} = TermCodec.decode(bytes)
    assert_raise ArgumentError, fn -> String.to_existing_atom(name) end
  end

  test "malformed documents give errors, not crashes" do
    {:ok, good} = TermCodec.encode({:ok, [1, "two", 3.0], %{a: 1}})

    corpus =
      [<<>>, <<2, 1>>, <<1, 99>>, <<1, 5, 255, 255, 255, 255>>, <<1, 3, 0, 0, 0, 9, 1>>] ++
        for(n <- 0..(byte_size(good) - 1), do: binary_part(good, 0, n)) ++ [good <> <<0>>]

    for bytes <- corpus do
      assert {:error, _} = TermCodec.decode(bytes), "accepted #{inspect(bytes)}"
    end

    deep = Enum.reduce(1..70, [], fn _, acc -> [acc] end)
    assert {:error, :too_deep} = TermCodec.encode(deep)
    assert {:error, {:unsupported, "pid"}} = TermCodec.encode(self())
    assert {:error, {:unsupported, "improper list"}} = TermCodec.encode([1 | 2])
    assert {:error, {:unsupported, "reference"}} = TermCodec.encode(make_ref())
    assert {:error, {:unsupported, "fun"}} = TermCodec.encode(fn -> 1 end)
    # Duplicate keys in a map document are refused.
    dup = <<1, 7, 0, 0, 0, 2, 4, 1, ?a, 1::64, 4, 1, ?a, 2::64>>
    dup = binary_replace_ints(dup)
    assert {:error, {:bad_term, _}} = TermCodec.decode(dup)
  end

  # <<1::64>> above is a bare integer payload; prefix each with the int tag.
  defp binary_replace_ints(<<1, 7, n::binary-size(4), 4, 1, ?a, x::64, 4, 1, ?a, y::64>>),
    do: <<1, 7, n::binary, 4, 1, ?a, 1, x::64, 4, 1, ?a, 1, y::64>>
end
