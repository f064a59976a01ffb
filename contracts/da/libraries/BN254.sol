// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title BN254: G1/G2 points, the EIP-196/197 precompiles, hash-to-G1 and BLS checks for deaios DA
/// @notice Same point structs and hash-to-curve as 0G's DA contracts (EigenLayer-style `BN254` library):
///         `G2Point` coordinates are in EIP-197 order (imaginary part first), and `hashToG1` is
///         try-and-increment (x = digest mod p; y = (x^3 + 3)^((p + 1) / 4); x += 1 until y^2 = x^3 + 3),
///         bit-identical to 0G's chain (`MapToCurve`), 0G's DA node and `deaios.da.bls.hash_to_g1`.
/// @dev Every precompile failure is reported to the caller (a `bool`), never swallowed: the precompiles
///      reject points off the curve (0x06, 0x07, 0x08) and G2 points outside the subgroup (0x08). Each
///      call gets a fixed gas stipend (a failing precompile burns all gas it was given), generous
///      against the Istanbul (EIP-1108/2565) prices: ecAdd 150, ecMul 6000, pairing 45000 + 34000 k.
library BN254 {
    /// @notice The base field modulus p.
    uint256 internal constant P = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// @notice The scalar field modulus r (group order).
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev (p + 1) / 4: a square root exponent, since p = 3 (mod 4).
    uint256 private constant SQRT_EXP = 0xc19139cb84c680a6e14116da060561765e05aa45a1c72a34f082305b61f3f52;

    uint256 private constant ADD_GAS = 1_000;
    uint256 private constant MUL_GAS = 12_000;
    uint256 private constant MODEXP_GAS = 10_000;
    uint256 private constant PAIRING2_GAS = 150_000;

    // The G2 generator, EIP-197 order (x = x0 + x1 * u; "1" is the imaginary part).
    uint256 internal constant G2_X1 = 11559732032986387107991004021392285783925812861821192530917403151452391805634;
    uint256 internal constant G2_X0 = 10857046999023057135944570762232829481370756359578518086990519993285655852781;
    uint256 internal constant G2_Y1 = 4082367875863433681332203403145435568316851327593401208105741076214120093531;
    uint256 internal constant G2_Y0 = 8495653923123431417604973247489272438418190587263600148770280649306958101930;
    // The negated G2 generator (y -> p - y).
    uint256 internal constant NEG_G2_Y1 = P - G2_Y1;
    uint256 internal constant NEG_G2_Y0 = P - G2_Y0;

    struct G1Point {
        uint256 X;
        uint256 Y;
    }

    /// @dev EIP-197 order: X = [x imaginary, x real], Y = [y imaginary, y real].
    struct G2Point {
        uint256[2] X;
        uint256[2] Y;
    }

    /// @notice The G1 generator (1, 2).
    function generatorG1() internal pure returns (G1Point memory) {
        return G1Point(1, 2);
    }

    /// @notice The G2 generator in EIP-197 order.
    function generatorG2() internal pure returns (G2Point memory) {
        return G2Point([G2_X1, G2_X0], [G2_Y1, G2_Y0]);
    }

    /// @notice True iff `p` is an affine point of y^2 = x^3 + 3 with canonical coordinates. The point
    ///         at infinity (0, 0) is not accepted: no key, signature or commitment may be it.
    function isOnCurve(G1Point memory p) internal pure returns (bool) {
        uint256 x = p.X;
        uint256 y = p.Y;
        if (x >= P || y >= P) return false;
        return mulmod(y, y, P) == addmod(mulmod(mulmod(x, x, P), x, P), 3, P);
    }

    /// @notice -p (the point at infinity stays itself).
    function negate(G1Point memory p) internal pure returns (G1Point memory) {
        if (p.X == 0 && p.Y == 0) return G1Point(0, 0);
        return G1Point(p.X, P - (p.Y % P));
    }

    /// @notice a + b with the ecAdd precompile (0x06); ok is false for points off the curve.
    function add(G1Point memory a, G1Point memory b) internal view returns (G1Point memory r, bool ok) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, mload(a))
            mstore(add(m, 0x20), mload(add(a, 0x20)))
            mstore(add(m, 0x40), mload(b))
            mstore(add(m, 0x60), mload(add(b, 0x20)))
            ok := staticcall(ADD_GAS, 0x06, m, 0x80, r, 0x40)
        }
    }

    /// @notice s * p with the ecMul precompile (0x07); ok is false for a point off the curve.
    function scalarMul(G1Point memory p, uint256 s) internal view returns (G1Point memory r, bool ok) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, mload(p))
            mstore(add(m, 0x20), mload(add(p, 0x20)))
            mstore(add(m, 0x40), s)
            ok := staticcall(MUL_GAS, 0x07, m, 0x60, r, 0x40)
        }
    }

    /// @notice base^exponent mod p with the modexp precompile (0x05).
    function expModP(uint256 base, uint256 exponent) internal view returns (uint256 result) {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x20)
            mstore(add(m, 0x20), 0x20)
            mstore(add(m, 0x40), 0x20)
            mstore(add(m, 0x60), base)
            mstore(add(m, 0x80), exponent)
            mstore(add(m, 0xa0), P)
            ok := staticcall(MODEXP_GAS, 0x05, m, 0xc0, m, 0x20)
            result := mload(m)
        }
        require(ok); // modexp cannot fail on well-formed input; only out-of-gas lands here
    }

    /// @notice Hash a 32-byte digest to G1 by try-and-increment (0G's `hashToG1` / `MapToCurve`).
    /// @dev About half of all x are abscissas, so the expected number of modexp calls is 2.
    function hashToG1(bytes32 digest) internal view returns (G1Point memory) {
        uint256 x = uint256(digest) % P;
        while (true) {
            uint256 beta = addmod(mulmod(mulmod(x, x, P), x, P), 3, P);
            uint256 y = expModP(beta, SQRT_EXP);
            if (mulmod(y, y, P) == beta) return G1Point(x, y);
            x = addmod(x, 1, P);
        }
        revert(); // unreachable
    }

    /// @notice Store a G1 point in one word: x (< 2^254), bit 254 = y's parity, bit 255 = 1 (present).
    function compress(G1Point memory p) internal pure returns (uint256) {
        return p.X | ((p.Y & 1) << 254) | (1 << 255);
    }

    /// @notice Inverse of `compress` for a word written by it (the point is known to be on the curve).
    function decompress(uint256 word) internal view returns (G1Point memory) {
        uint256 x = word & ((1 << 254) - 1);
        uint256 y = expModP(addmod(mulmod(mulmod(x, x, P), x, P), 3, P), SQRT_EXP);
        if ((y & 1) != ((word >> 254) & 1)) y = P - y;
        return G1Point(x, y);
    }

    /// @notice BLS check with a G1/G2 key pair, as 0G's DAEntrance: with gamma = keccak256(sig, pk1, pk2,
    ///         h) mod r, e(sig + gamma * pk1, -G2) * e(h + gamma * G1, pk2) == 1. This holds (except with
    ///         negligible probability) iff sig = sk * h, pk1 = sk * G1 and pk2 = sk * G2 for one sk.
    /// @param h the hashed message, sig the (aggregate) signature, pk1/pk2 the (aggregate) public keys;
    ///        G1 inputs must already be checked on the curve
    /// @return valid the pairing equation holds
    /// @return callOk false if a precompile rejected an input (pk2 not a valid G2 point)
    function verifyBLS(G1Point memory h, G1Point memory sig, G1Point memory pk1, G2Point memory pk2)
        internal
        view
        returns (bool valid, bool callOk)
    {
        uint256 gamma = _gamma(h, sig, pk1, pk2);
        (G1Point memory gpk, bool ok1) = scalarMul(pk1, gamma);
        (G1Point memory left, bool ok2) = add(sig, gpk);
        (G1Point memory gg, bool ok3) = scalarMul(generatorG1(), gamma);
        (G1Point memory right, bool ok4) = add(h, gg);
        if (!(ok1 && ok2 && ok3 && ok4)) return (false, false);
        return pairing2(left, G2Point([G2_X1, G2_X0], [NEG_G2_Y1, NEG_G2_Y0]), right, pk2);
    }

    /// @dev keccak256(sig.X, sig.Y, pk1.X, pk1.Y, pk2.X[0], pk2.X[1], pk2.Y[0], pk2.Y[1], h.X, h.Y) mod r.
    function _gamma(G1Point memory h, G1Point memory sig, G1Point memory pk1, G2Point memory pk2)
        private
        pure
        returns (uint256)
    {
        uint256[10] memory buf =
            [sig.X, sig.Y, pk1.X, pk1.Y, pk2.X[0], pk2.X[1], pk2.Y[0], pk2.Y[1], h.X, h.Y];
        return uint256(keccak256(abi.encodePacked(buf))) % R;
    }

    /// @notice e(a1, b1) * e(a2, b2) == 1 with the pairing precompile (0x08).
    /// @return valid the product is 1; callOk false if the precompile rejected an input
    function pairing2(G1Point memory a1, G2Point memory b1, G1Point memory a2, G2Point memory b2)
        internal
        view
        returns (bool valid, bool callOk)
    {
        uint256[12] memory input = [
            a1.X, a1.Y, b1.X[0], b1.X[1], b1.Y[0], b1.Y[1],
            a2.X, a2.Y, b2.X[0], b2.X[1], b2.Y[0], b2.Y[1]
        ];
        uint256[1] memory out;
        assembly ("memory-safe") {
            callOk := staticcall(PAIRING2_GAS, 0x08, input, 0x180, out, 0x20)
        }
        valid = callOk && out[0] == 1;
    }
}
